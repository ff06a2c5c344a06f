"""The benchmark's measurements: the machine, its matrix-multiply roofline, training steps, the
input pipeline and inference calls - each a plain function of a :class:`BenchmarkConfig`-like
``config`` (``image_size``, ``batch_size``, ``variant``, ``repeats``, ``warmup``)."""

import contextlib
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from importlib import metadata

import keras
import numpy as np
import tensorflow as tf

from inception_keras import shapes
from inception_keras.data import DataConfig, load_data
from inception_keras.export.onnx import export_onnx
from inception_keras.export.saved_model import export_saved_model
from inception_keras.export.tflite import export_tflite
from inception_keras.model import GoogLeNet
from inception_keras.runtime import cpu_info, onednn_enabled
from inception_keras.summary import summary_rows
from inception_keras.timing import timed_calls
from inception_keras.training import TrainConfig, compile_for_training, training_targets

# The CPU flags that decide which kernels TF, XNNPACK and ONNX Runtime can use.
FLAGS_OF_INTEREST = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_bf16",
    "amx_int8",
    "avx_vnni",
)


def machine():
    """CPU model, cores, the flags that matter, GPUs, library versions and whether TF runs its
    oneDNN CPU kernels."""
    model, flags = cpu_info()
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__}
    for package in ("onnxruntime", "ai-edge-litert"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "flags": [f for f in FLAGS_OF_INTEREST if f in flags],
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "versions": versions,
        "onednn": onednn_enabled(),
    }


def matmul_rate(size=2048, dtype=tf.float32, repeats=10):
    """Best GFLOP/s of ``repeats`` ``size`` x ``size`` matrix products (2 size^3 FLOPs each) in a
    tf.function. The best, not the median: a roofline is the machine's limit, and on a shared
    machine a neighbour's load only ever lowers a sample."""
    a = tf.random.normal([size, size], dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    product = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y)[:1, :1], tf.float32)))
    product(a, b).numpy()  # trace and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, b).numpy()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times) / 1e9


def multiply_adds(model):
    """Forward multiply-adds of ``model`` (aux heads included when it has them)."""

    return sum(row.ops for row in summary_rows(model))


class _StepTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self._start)


@contextlib.contextmanager
def _global_policy(precision):
    """The global dtype policy set to ``precision`` inside the block, the caller's after it."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _training_googlenet(config):
    """The benchmarked network with its aux heads, in the current global dtype policy."""
    return GoogLeNet(
        input_shape=(config.image_size, config.image_size, 3),
        classes=1000,
        include_aux=True,
        variant=config.variant,
    )


def training_model(config, precision, jit_compile, steps_per_execution=1):
    with _global_policy(precision):
        model = _training_googlenet(config)
    # The paper's recipe: SGD, momentum 0.9, Polyak averaging (EMA) - the real training step.
    train_config = TrainConfig(
        variant=config.variant,
        image_size=config.image_size,
        recipe="paper",
        jit_compile=jit_compile,
        precision=precision,
        steps_per_execution=steps_per_execution,
    )
    return compile_for_training(model, train_config, steps_per_epoch=1000)


def plain_keras_train_throughput(config, precision):
    """Median images/s of ``train_on_batch`` on ``GoogLeNet(include_aux=True)`` compiled by hand
    (SGD with momentum, losses weighted 1, 0.3, 0.3) under the global ``precision`` policy: how a
    Keras user who does not use this package's ``fit`` trains it."""
    with _global_policy(precision):
        model = _training_googlenet(config)
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=["sparse_categorical_crossentropy"] * 3,
            loss_weights=[1.0, 0.3, 0.3],
        )
        rng = np.random.default_rng(0)
        images = rng.uniform(0, 255, (config.batch_size, config.image_size, config.image_size, 3))
        images = images.astype(np.float32)
        labels = rng.integers(0, 1000, config.batch_size)
        times = []
        for step in range(config.warmup + config.repeats):
            start = time.perf_counter()
            model.train_on_batch(images, [labels] * 3)
            if step >= config.warmup:
                times.append(time.perf_counter() - start)
    return config.batch_size / statistics.median(times)


def synthetic_batches(config, classes=1000):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (config.batch_size, config.image_size, config.image_size, 3))
    labels = rng.integers(0, classes, config.batch_size)
    return tf.data.Dataset.from_tensors(
        (tf.constant(images, tf.float32), tf.constant(labels, tf.int32))
    ).repeat()


def train_throughput(config, precision, jit_compile, dataset, steps_per_execution=1):
    """Median images/s of ``fit``'s training step over ``config.repeats`` steps after warm-up.

    With ``steps_per_execution`` N, each timed call runs N steps (Keras calls batch callbacks
    once per call), so ``repeats`` calls of N steps are timed.
    """

    model = training_model(config, precision, jit_compile, steps_per_execution)
    timer = _StepTimer()
    steps = (config.warmup + config.repeats) * steps_per_execution
    model.fit(
        training_targets(dataset.repeat(), 1000),
        steps_per_epoch=steps,
        epochs=1,
        callbacks=[timer],
        verbose=0,
    )
    seconds_per_call = statistics.median(timer.times[config.warmup :])
    return config.batch_size * steps_per_execution / seconds_per_call


def train_throughput_in_subprocess(config, environment=None, steps_per_execution=1):
    """:func:`train_throughput` (float32, in-memory, no XLA) in a fresh Python with
    ``environment`` added: TF reads its thread counts (``TF_NUM_INTRAOP_THREADS``,
    ``TF_NUM_INTEROP_THREADS``) and its choice of CPU kernels (``TF_ENABLE_ONEDNN_OPTS``) once,
    at start-up, so they cannot change within a process, and
    a fresh process also keeps other runtimes' idle threads out of the measurement."""
    code = (
        "import json, sys\n"
        "from inception_keras.benchmark import BenchmarkConfig, measure as m\n"
        "c = BenchmarkConfig(**json.loads(sys.argv[1]))\n"
        "print(m.train_throughput(c, 'float32', False, m.synthetic_batches(c), "
        "int(sys.argv[2])))\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            json.dumps(dataclasses.asdict(config)),
            str(steps_per_execution),
        ],
        env={**os.environ, **(environment or {})},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"the training measurement with {environment} failed:\n{result.stderr[-2000:]}"
        )
    return float(result.stdout.strip().splitlines()[-1])


def jpeg_folder(directory, count, image_size, classes=4):
    """``count`` rendered built-in images as JPEG files in ``classes`` class folders."""

    written = 0
    for index, (image, label) in enumerate(shapes.generate("train", count, image_size)):
        folder = os.path.join(directory, f"class_{label % classes}")
        os.makedirs(folder, exist_ok=True)
        tf.io.write_file(
            os.path.join(folder, f"{index:05d}.jpg"), tf.io.encode_jpeg(image, quality=90)
        )
        written += 1
    return directory


def training_pipeline(config, folder):
    """The real training input pipeline over ``folder``: decode, paper crop, distortions."""

    data = load_data(
        DataConfig(
            dataset=folder,
            image_size=config.image_size,
            batch_size=config.batch_size,
            validation_fraction=0.0,
            shuffle_buffer=1024,
        )
    )
    return data.train


def pipeline_throughput(config, dataset, batches=None):
    """Images/s of iterating the pipeline alone (after ``config.warmup`` batches)."""
    batches = batches or max(4 * config.repeats, 10)
    iterator = iter(dataset.repeat())
    for _ in range(config.warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * config.batch_size / (time.perf_counter() - start)


def inference_timings(runner, image, batch, latency_repeats, repeats, warmup):
    """``(batch-1 median ms, p90 ms, batch throughput img/s)`` of a runner."""
    latencies = np.asarray(timed_calls(runner, image, latency_repeats, warmup)) * 1e3
    throughput = len(batch) / statistics.median(timed_calls(runner, batch, repeats, warmup))
    return float(np.median(latencies)), float(np.percentile(latencies, 90)), throughput


def inference_artefacts(config, directory):
    """Exports the inference model once in every format; ``{label: path}``."""

    model = GoogLeNet(
        input_shape=(config.image_size, config.image_size, 3), classes=1000, variant=config.variant
    )
    os.makedirs(directory, exist_ok=True)
    paths = {"Keras": os.path.join(directory, "model.keras")}
    model.save(paths["Keras"])
    paths["SavedModel"] = export_saved_model(model, os.path.join(directory, "sm"), name="bench")
    calibration = np.stack([image for image, _ in shapes.generate("train", 16, config.image_size)])
    quantizations = ("float32", "int8") if config.quick else ("float32", "float16", "int8")
    for quantization in quantizations:
        paths[f"TFLite {quantization}"] = export_tflite(
            model,
            os.path.join(directory, f"{quantization}.tflite"),
            quantization=quantization,
            representative_data=calibration.astype(np.float32),
        )
    paths["ONNX"] = export_onnx(model, os.path.join(directory, "model.onnx"))
    return model, paths

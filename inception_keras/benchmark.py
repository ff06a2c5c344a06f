"""Speed measured against the machine's own limit: a roofline, training and inference throughput,
and the input pipeline on its own, all in one run.

:func:`run` measures, on whatever machine it starts on:

1. the roofline: the fp32 (and, where supported, bf16) matrix-multiply rate of this machine in
   the same run (the best sample, taken at the start and again at the end);
2. training throughput of the paper's setup (aux heads on, SGD with Polyak averaging, the real
   ``train_step`` through ``model.fit``) per precision, with and without XLA, fed from in-memory
   tensors and through the real ``tf.data`` pipeline from encoded JPEGs;
3. the training input pipeline alone (decode, the paper's crop, photometric distortions);
4. inference: batch-1 latency (median, p90) and batch-``batch_size`` throughput of the Keras model,
   the SavedModel, TFLite float32/float16/int8 (XNNPACK, threads = cores) and ONNX Runtime;
5. on request (``settings``, not in the default run): the runtime settings worth trying, each
   against the default - ONNX Runtime session options and graph optimisation levels, TFLite
   threads and XNNPACK, TF intra-/inter-op threads and ``steps_per_execution`` for training.

Every rate is also shown as achieved GFLOP/s (2 x multiply-adds x images/s; training counted as
3 x the forward pass) and as a share of the fp32 roofline. Warm-up steps are excluded and medians
reported. Nothing here is a unit test: the targets are printed as ratios from the same run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata

import keras
import numpy as np
import tensorflow as tf

from inception_keras import shapes
from inception_keras.data import DataConfig, load_data
from inception_keras.errors import UsageError
from inception_keras.export.onnx import OnnxRunner, export_onnx
from inception_keras.export.runners import load_runner
from inception_keras.export.saved_model import export_saved_model
from inception_keras.export.tflite import TFLiteRunner, export_tflite
from inception_keras.model import GoogLeNet, inference_model
from inception_keras.summary import summary_rows
from inception_keras.timing import timed_calls
from inception_keras.training import TrainConfig, compile_for_training, training_targets

SECTIONS = ("roofline", "train", "pipeline", "inference", "settings")
DEFAULT_SECTIONS = "roofline,train,pipeline,inference"
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
# torchvision GoogLeNet at its best CPU settings (channels_last, bf16 autocast) on a 2-vCPU
# AVX-512 machine, training at batch 32 - measured once elsewhere, not by this script
# (PyTorch is not a dependency).
TORCHVISION_BEST_BF16_TRAIN = 26.0


@dataclasses.dataclass
class BenchmarkConfig:
    """What to measure and how long.

    Attributes:
        quick: a smoke run of every section in about a minute: 64 px, batch 8, two timed
            steps, float32 only, no XLA, TFLite float32 and int8 only.
        image_size: square input size (the paper's 224).
        batch_size: training batch and inference throughput batch (the paper-like 32).
        variant: ``paper`` (with LRN) or ``bn``.
        repeats: timed training steps and throughput batches per measurement (medians).
        latency_repeats: timed batch-1 calls per inference artefact.
        warmup: untimed steps/calls before timing.
        precisions: comma-separated training precisions, or ``auto``: float32, plus
            mixed_bfloat16 where the CPU has bf16 instructions or a GPU is present, plus
            mixed_float16 on a GPU.
        xla: ``both``, ``on`` or ``off``: train steps with and/or without ``jit_compile``.
        sections: comma-separated subset of roofline,train,pipeline,inference,settings
            (settings: the runtime settings sweep, a few minutes more; not in the default run).
        matmul_size: side of the square matrices of the roofline measurement.
    """

    quick: bool = False
    image_size: int = 224
    batch_size: int = 32
    variant: str = "paper"
    repeats: int = 5
    latency_repeats: int = 30
    warmup: int = 2
    precisions: str = "auto"
    xla: str = "both"
    sections: str = DEFAULT_SECTIONS
    matmul_size: int = 2048

    def resolved(self):
        """The configuration actually run (``quick`` applied, ``auto`` resolved)."""
        config = self
        if config.quick:
            config = dataclasses.replace(
                config,
                image_size=64,
                batch_size=8,
                repeats=2,
                latency_repeats=5,
                warmup=1,
                precisions="float32",
                xla="off",
                matmul_size=1024,
            )
        if config.precisions == "auto":
            precisions = ["float32"]
            gpu = bool(tf.config.list_physical_devices("GPU"))
            if gpu or {"avx512_bf16", "amx_bf16"} & set(machine()["flags"]):
                precisions.append("mixed_bfloat16")
            if gpu:
                precisions.append("mixed_float16")
            config = dataclasses.replace(config, precisions=",".join(precisions))
        unknown = set(config.section_list()) - set(SECTIONS)
        if unknown:
            raise UsageError(f"`sections` {sorted(unknown)} unknown; choose from {SECTIONS}.")
        if config.xla not in ("both", "on", "off"):
            raise UsageError(f"`xla` must be both, on or off; got {config.xla!r}.")
        return config

    def section_list(self):
        return [s.strip() for s in self.sections.split(",") if s.strip()]


def machine():
    """CPU model, cores, the flags that matter, GPUs and library versions."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
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
    }


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------
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


def training_model(config, precision, jit_compile, steps_per_execution=1):

    keras.mixed_precision.set_global_policy(precision)
    try:
        model = GoogLeNet(
            input_shape=(config.image_size, config.image_size, 3),
            classes=1000,
            aux_logits=True,
            variant=config.variant,
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
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
    ``TF_NUM_INTEROP_THREADS``) once, at start-up, so they cannot change within a process, and
    a fresh process also keeps other runtimes' idle threads out of the measurement."""
    code = (
        "import json, sys\n"
        "from inception_keras import benchmark as b\n"
        "c = b.BenchmarkConfig(**json.loads(sys.argv[1]))\n"
        "print(b.train_throughput(c, 'float32', False, b.synthetic_batches(c), "
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


def setting_variants():
    """``[(artefact label, setting, runner factory(path))]``: the default first per artefact."""
    import onnxruntime  # deferred: a heavy runtime, needed only by this sweep

    cores = os.cpu_count()
    level = onnxruntime.GraphOptimizationLevel
    onnx = [
        ("default (all graph optimisations, threads = cores)", {}),
        (
            "graph optimisation extended (no NCHWc layout)",
            dict(graph_optimization_level=level.ORT_ENABLE_EXTENDED),
        ),
        ("graph optimisation basic", dict(graph_optimization_level=level.ORT_ENABLE_BASIC)),
        ("intra-op threads 1", dict(intra_op_num_threads=1)),
        ("no spin-waiting", {"session.intra_op.allow_spinning": "0"}),
        (
            f"parallel execution, inter-op threads {cores}",
            dict(execution_mode=onnxruntime.ExecutionMode.ORT_PARALLEL, inter_op_num_threads=cores),
        ),
    ]
    variants = [
        ("ONNX", name, lambda path, o=options: OnnxRunner(path, session_options=o))
        for name, options in onnx
    ]
    for label in ("TFLite float32", "TFLite int8"):
        variants += [
            (
                label,
                f"default (XNNPACK, threads = cores = {cores})",
                lambda path: TFLiteRunner(path, num_threads=cores),
            ),
            (
                label,
                "XNNPACK, threads 1 (LiteRT's own default)",
                lambda path: TFLiteRunner(path, num_threads=1),
            ),
            (
                label,
                "builtin kernels, no XNNPACK",
                lambda path: TFLiteRunner(path, num_threads=cores, xnnpack=False),
            ),
        ]
    return variants


def settings_rows(config, paths, image, batch, log=print):
    """The settings sweep: inference variants, then float32 training variants; each row with
    its rate relative to the first (default) row of its group."""
    rows = []
    for label, setting, factory in setting_variants():
        median, _, rate = inference_timings(
            factory(paths[label]),
            image,
            batch,
            config.latency_repeats,
            config.repeats,
            config.warmup,
        )
        rows.append(dict(group=label, setting=setting, latency_ms=median, images_per_sec=rate))
        log(f"  settings {label}, {setting}: {median:.2f} ms batch-1, {rate:.1f} img/s")
    # Each in a fresh process (see train_throughput_in_subprocess), the default included.
    train = [
        ("default (TF threads = cores, steps_per_execution 1)", {}, 1),
        ("steps_per_execution 4", {}, 4),
        ("TF inter-op threads 1", {"TF_NUM_INTEROP_THREADS": "1"}, 1),
        ("TF intra-op threads 1", {"TF_NUM_INTRAOP_THREADS": "1"}, 1),
    ]
    for setting, environment, steps_per_execution in train:
        rate = train_throughput_in_subprocess(config, environment, steps_per_execution)
        rows.append(
            dict(group="train float32", setting=setting, latency_ms=None, images_per_sec=rate)
        )
        log(f"  settings train float32, {setting}: {rate:.1f} img/s")
    defaults = {}
    for row in rows:
        default = defaults.setdefault(row["group"], row["images_per_sec"])
        row["relative"] = row["images_per_sec"] / default
    return rows


# --------------------------------------------------------------------------------------------
# The run and its report
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Report:
    """Everything one :func:`run` measured; ``format()`` prints it, ``to_json()`` serialises it."""

    machine: dict
    config: dict
    roofline: dict = dataclasses.field(default_factory=dict)  # {"float32": GFLOP/s, ...}
    train: list = dataclasses.field(default_factory=list)
    pipeline: dict = dataclasses.field(default_factory=dict)
    inference: list = dataclasses.field(default_factory=list)
    settings: list = dataclasses.field(default_factory=list)
    targets: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def to_json(self):
        return dataclasses.asdict(self)

    def format(self):
        m = self.machine
        lines = [
            f"Machine: {m['cpu']}, {m['cores']} cores, flags {' '.join(m['flags']) or '-'}"
            f"{', GPUs ' + ', '.join(m['gpus']) if m['gpus'] else ', no GPU'}",
            "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
            f"Model: GoogLeNet {self.config['variant']} variant, "
            f"{self.config['image_size']}x{self.config['image_size']}, 1000 classes, batch "
            f"{self.config['batch_size']}, medians of {self.config['repeats']} steps after "
            f"{self.config['warmup']} warm-up",
            "",
        ]
        if self.roofline:
            lines.append(
                "Roofline (matrix multiply, best of the run's start and end): "
                + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in self.roofline.items())
            )
            lines.append("")
        if self.train:
            lines += _table(
                ("training", "precision", "XLA", "feed", "img/s", "GFLOP/s", "% fp32 roofline"),
                [
                    (
                        "train",
                        r["precision"],
                        "on" if r["xla"] else "off",
                        r["feed"],
                        f"{r['images_per_sec']:.1f}",
                        f"{r['gflops']:.0f}",
                        _pct(r["roofline_share"]),
                    )
                    for r in self.train
                ],
            )
            lines.append("")
        if self.pipeline:
            p = self.pipeline
            lines.append(
                f"Input pipeline alone (JPEG decode, paper crop, distortions): "
                f"{p['images_per_sec']:.0f} img/s"
                + (
                    f" = {p['ratio_to_training']:.1f}x the fastest training step"
                    if p.get("ratio_to_training")
                    else ""
                )
            )
            lines.append("")
        if self.inference:
            lines += _table(
                (
                    "inference",
                    "batch-1 median ms",
                    "p90 ms",
                    f"batch-{self.config['batch_size']} img/s",
                    "GFLOP/s",
                    "% fp32 roofline",
                ),
                [
                    (
                        r["artefact"],
                        f"{r['latency_ms']:.2f}",
                        f"{r['latency_p90_ms']:.2f}",
                        f"{r['images_per_sec']:.1f}",
                        f"{r['gflops']:.0f}",
                        _pct(r["roofline_share"]),
                    )
                    for r in self.inference
                ],
            )
            lines.append("")
        if self.settings:
            lines += _table(
                (
                    "settings",
                    "setting",
                    "batch-1 ms",
                    f"batch-{self.config['batch_size']} img/s",
                    "vs default",
                ),
                [
                    (
                        r["group"],
                        r["setting"],
                        "-" if r["latency_ms"] is None else f"{r['latency_ms']:.2f}",
                        f"{r['images_per_sec']:.1f}",
                        f"{r['relative']:.2f}x",
                    )
                    for r in self.settings
                ],
            )
            lines.append("")
        if self.targets:
            lines += _table(
                ("target", "measured", "goal", "met"),
                [
                    (t["name"], t["measured"], t["goal"], "yes" if t["met"] else "NO")
                    for t in self.targets
                ],
            )
            lines.append("")
        lines.append(f"Benchmark took {self.seconds:.0f} s.")
        return "\n".join(lines)


def _pct(value):
    return "-" if value is None else f"{value:.0%}"


def _table(header, rows):
    rows = [tuple(header)] + [tuple(r) for r in rows]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    text = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return [text[0], "  ".join("-" * w for w in widths)] + text[1:]


def run(config=BenchmarkConfig(), log=print):
    """Runs the benchmark; returns a :class:`Report`. ``log`` receives progress lines."""
    config = config.resolved()
    sections = config.section_list()
    started = time.perf_counter()
    report = Report(machine(), dataclasses.asdict(config))
    log(f"Benchmarking {', '.join(sections)} ({'quick' if config.quick else 'full'} run)...")

    if "roofline" in sections:
        report.roofline["float32"] = matmul_rate(config.matmul_size, tf.float32)
        if "mixed_bfloat16" in config.precisions:
            report.roofline["bfloat16"] = matmul_rate(config.matmul_size, tf.bfloat16)
        log(f"  roofline: {report.roofline}")

    def share(gflops):
        roofline = report.roofline.get("float32")
        return gflops / roofline if roofline else None

    train_macs = multiply_adds(
        GoogLeNet(
            input_shape=(config.image_size, config.image_size, 3),
            classes=1000,
            aux_logits=True,
            variant=config.variant,
        )
    )
    infer_macs = multiply_adds(
        inference_model(
            GoogLeNet(
                input_shape=(config.image_size, config.image_size, 3),
                classes=1000,
                variant=config.variant,
            )
        )
    )
    with tempfile.TemporaryDirectory(prefix="inception-keras-bench-") as scratch:
        folder = None
        if {"train", "pipeline"} & set(sections):
            side = max(config.image_size * 5 // 4, 64)  # larger than the input, as photos are
            folder = jpeg_folder(os.path.join(scratch, "jpegs"), 4 * config.batch_size, side)
        if "train" in sections:
            xla = {"both": (False, True), "on": (True,), "off": (False,)}[config.xla]
            for precision in config.precisions.split(","):
                for jit in xla:
                    feeds = [("in-memory", synthetic_batches(config))]
                    if not jit:  # the pipeline feeds the step the same way with or without XLA
                        feeds.append(("tf.data JPEG", training_pipeline(config, folder)))
                    for feed, dataset in feeds:
                        rate = train_throughput(config, precision, jit, dataset)
                        gflops = 2 * 3 * train_macs * rate / 1e9
                        report.train.append(
                            dict(
                                precision=precision,
                                xla=jit,
                                feed=feed,
                                images_per_sec=rate,
                                gflops=gflops,
                                roofline_share=share(gflops),
                            )
                        )
                        log(f"  train {precision} xla={jit} {feed}: {rate:.1f} img/s")
        if "pipeline" in sections:
            rate = pipeline_throughput(config, training_pipeline(config, folder))
            fastest = max((r["images_per_sec"] for r in report.train), default=None)
            report.pipeline = dict(
                images_per_sec=rate, ratio_to_training=rate / fastest if fastest else None
            )
            log(f"  pipeline: {rate:.0f} img/s")
        if {"inference", "settings"} & set(sections):
            _, paths = inference_artefacts(config, os.path.join(scratch, "export"))
            rng = np.random.default_rng(1)
            batch = rng.uniform(
                0, 255, (config.batch_size, config.image_size, config.image_size, 3)
            ).astype(np.float32)
        if "inference" in sections:
            for label, path in paths.items():
                runner = load_runner(path)  # TFLite: XNNPACK, one thread per core
                median, p90, rate = inference_timings(
                    runner, batch[:1], batch, config.latency_repeats, config.repeats, config.warmup
                )
                gflops = 2 * infer_macs * rate / 1e9
                report.inference.append(
                    dict(
                        artefact=label,
                        latency_ms=median,
                        latency_p90_ms=p90,
                        images_per_sec=rate,
                        gflops=gflops,
                        roofline_share=share(gflops),
                    )
                )
                log(f"  inference {label}: {median:.2f} ms batch-1, {rate:.1f} img/s")
                del runner
        if "settings" in sections:
            report.settings = settings_rows(config, paths, batch[:1], batch, log)
    if "roofline" in sections:  # again at the end: the higher of the two is the limit
        for key, dtype in (("float32", tf.float32), ("bfloat16", tf.bfloat16)):
            if key in report.roofline:
                report.roofline[key] = max(
                    report.roofline[key], matmul_rate(config.matmul_size, dtype)
                )
        for group in (report.train, report.inference):
            for row in group:
                row["roofline_share"] = share(row["gflops"])
        log(f"  roofline (best of start and end): {report.roofline}")
    report.targets = targets(report)
    report.seconds = time.perf_counter() - started
    return report


def targets(report):
    """The performance targets as ``{name, measured, goal, met}``, from this report's numbers."""
    out = []

    def best(rows, **match):
        rates = [r for r in rows if all(r[k] == v for k, v in match.items())]
        return max(rates, key=lambda r: r["images_per_sec"], default=None)

    fp32 = best(report.train, precision="float32", feed="in-memory")
    if fp32 and fp32["roofline_share"] is not None:
        out.append(
            dict(
                name="training fp32, share of the fp32 roofline",
                measured=f"{fp32['roofline_share']:.0%}",
                goal=">= 80%",
                met=fp32["roofline_share"] >= 0.8,
            )
        )
    bf16 = best(report.train, precision="mixed_bfloat16", feed="in-memory")
    if bf16:
        ratio = bf16["images_per_sec"] / TORCHVISION_BEST_BF16_TRAIN
        out.append(
            dict(
                name="training bf16 vs torchvision bf16 (26 img/s, another CPU)",
                measured=f"{ratio:.2f}x ({bf16['images_per_sec']:.1f} img/s)",
                goal=">= 1.3x",
                met=ratio >= 1.3,
            )
        )
    if report.pipeline.get("ratio_to_training"):
        ratio = report.pipeline["ratio_to_training"]
        out.append(
            dict(
                name="input pipeline vs fastest training step",
                measured=f"{ratio:.1f}x",
                goal=">= 3x",
                met=ratio >= 3,
            )
        )
    fp32_inference = [
        r
        for r in report.inference
        if r["artefact"] not in ("TFLite float16", "TFLite int8")
        and r["roofline_share"] is not None
    ]
    if fp32_inference:
        top = max(fp32_inference, key=lambda r: r["roofline_share"])
        out.append(
            dict(
                name=f"best fp32 inference ({top['artefact']}), share of the roofline",
                measured=f"{top['roofline_share']:.0%}",
                goal=">= 90%",
                met=top["roofline_share"] >= 0.9,
            )
        )
    by_name = {r["artefact"]: r for r in report.inference}
    if "TFLite int8" in by_name and "TFLite float32" in by_name:
        speedup = by_name["TFLite float32"]["latency_ms"] / by_name["TFLite int8"]["latency_ms"]
        out.append(
            dict(
                name="TFLite int8 vs float32, batch-1 latency",
                measured=f"{speedup:.1f}x",
                goal=">= 3x",
                met=speedup >= 3,
            )
        )
    return out


def save_json(report, path):
    with open(path, "w") as f:
        json.dump(report.to_json(), f, indent=2)

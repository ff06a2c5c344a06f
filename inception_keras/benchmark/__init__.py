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
   threads and XNNPACK, TF intra-/inter-op threads and ``steps_per_execution`` for training;
6. with ``peer`` or ``peer_python``: torchvision's GoogLeNet at its best settings
   (``scripts/peer_torchvision.py``), so the goals against it are ratios from the same machine.

Training is measured both ways a user trains: through ``model.fit`` with this package's
``compile_for_training``, and plain Keras - ``GoogLeNet(include_aux=True)`` compiled by hand
under the global dtype policy, stepped with ``train_on_batch``.

Every rate is also shown as achieved GFLOP/s (2 x multiply-adds x images/s; training counted as
3 x the forward pass) and as a share of the fp32 roofline. Warm-up steps are excluded and medians
reported. Nothing here is a unit test: the targets are printed as ratios from the same run.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time

import numpy as np
import tensorflow as tf

from inception_keras.benchmark.measure import (
    inference_artefacts,
    inference_timings,
    jpeg_folder,
    machine,
    matmul_rate,
    multiply_adds,
    pipeline_throughput,
    plain_keras_train_throughput,
    synthetic_batches,
    train_throughput,
    training_pipeline,
)
from inception_keras.benchmark.peer import load_peer, run_peer
from inception_keras.benchmark.report import BenchmarkReport, save_json, targets
from inception_keras.benchmark.settings import settings_rows
from inception_keras.errors import UsageError
from inception_keras.export.runners import load_runner
from inception_keras.model import GoogLeNet, inference_model

__all__ = ["BenchmarkConfig", "BenchmarkReport", "SECTIONS", "multiply_adds", "run", "save_json"]

SECTIONS = ("roofline", "train", "pipeline", "inference", "settings")
DEFAULT_SECTIONS = "roofline,train,pipeline,inference"


@dataclasses.dataclass
class BenchmarkConfig:
    """What to measure and how long.

    Attributes:
        quick: a smoke run of every section in about two minutes: 64 px, batch 8, two timed
            steps, float32 only, no XLA, TFLite float32 and int8 only.
        image_size: square input size (the paper's 224).
        batch_size: training batch and inference throughput batch (the paper-like 32).
        variant: a model variant: ``paper`` (LRN, no batch norm), ``bn``, or ``slim``
            (torchvision's architecture: the like-for-like comparison with its googlenet).
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
        peer: a JSON report of ``scripts/peer_torchvision.py`` (torchvision's GoogLeNet) from
            this machine; the goals against torchvision are ratios against it.
        peer_python: a Python with torch and torchvision (``./scripts/peer_env.sh`` makes
            ``.venv-peer``): runs ``scripts/peer_torchvision.py`` at this run's sizes, after
            this package's training and before its inference measurements.
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
    peer: str | None = None
    peer_python: str | None = None

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
        if config.peer and config.peer_python:
            raise UsageError("give `peer` (a JSON report) or `peer_python` (to run it), not both.")
        if config.peer and not os.path.isfile(config.peer):
            raise UsageError(f"`peer`: no such file: {config.peer}")
        return config

    def section_list(self):
        return [s.strip() for s in self.sections.split(",") if s.strip()]


def run(config=None, log=print):
    """Runs the benchmark (default: a :class:`BenchmarkConfig`); returns a
    :class:`BenchmarkReport`. ``log`` receives progress lines."""
    config = (config or BenchmarkConfig()).resolved()
    sections = config.section_list()
    started = time.perf_counter()
    report = BenchmarkReport(machine(), dataclasses.asdict(config))
    log(f"Benchmarking {', '.join(sections)} ({'quick' if config.quick else 'full'} run)...")

    if "roofline" in sections:
        report.roofline["float32"] = matmul_rate(config.matmul_size, tf.float32)
        if "mixed_bfloat16" in config.precisions:
            report.roofline["bfloat16"] = matmul_rate(config.matmul_size, tf.bfloat16)
        log(f"  roofline: {report.roofline}")

    def share(gflops):
        roofline = report.roofline.get("float32")
        return gflops / roofline if roofline else None

    def train_row(precision, jit, feed, rate):
        gflops = 2 * 3 * train_macs * rate / 1e9  # a training step: 3 x the forward pass
        return dict(
            precision=precision,
            xla=jit,
            feed=feed,
            images_per_sec=rate,
            gflops=gflops,
            roofline_share=share(gflops),
        )

    train_macs = multiply_adds(
        GoogLeNet(
            input_shape=(config.image_size, config.image_size, 3),
            classes=1000,
            include_aux=True,
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
                        report.train.append(train_row(precision, jit, feed, rate))
                        log(f"  train {precision} xla={jit} {feed}: {rate:.1f} img/s")
                # Plain Keras, the other way a user trains: any speed-up must live in the model.
                if not jit:
                    rate = plain_keras_train_throughput(config, precision)
                    feed = "plain Keras train_on_batch"
                    report.train.append(train_row(precision, False, feed, rate))
                    log(f"  train {precision} {feed}: {rate:.1f} img/s")
        if config.peer:
            report.peer = load_peer(config.peer)
        elif config.peer_python:  # between the sections: never beside one of ours
            report.peer = run_peer(config, log)
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
                latency_gflops = 2 * infer_macs / (median / 1e3) / 1e9  # one image at a time
                report.inference.append(
                    dict(
                        artefact=label,
                        latency_ms=median,
                        latency_p90_ms=p90,
                        latency_gflops=latency_gflops,
                        latency_roofline_share=share(latency_gflops),
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
        for row in report.inference:
            row["latency_roofline_share"] = share(row["latency_gflops"])
        log(f"  roofline (best of start and end): {report.roofline}")
    report.targets = targets(report)
    report.seconds = time.perf_counter() - started
    return report

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
   (``benchmark/peer_torchvision.py``), so the goals against it are ratios from the same machine.

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

from inception_keras.benchmark.config import BenchmarkConfig
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
from inception_keras.benchmark.report import BenchmarkReport, targets
from inception_keras.benchmark.settings import settings_rows
from inception_keras.model import GoogLeNet, inference_model
from inception_keras.runners import load_runner


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

"""What a benchmark run measures and how long: :class:`BenchmarkConfig`, without TensorFlow (read by
the command line's ``--help``); :mod:`inception_keras.benchmark.suite` runs it.
"""

import dataclasses
import os

from inception_keras.errors import UsageError
from inception_keras.runtime import cpu_info

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
        peer: a JSON report of ``benchmark/peer_torchvision.py`` (torchvision's GoogLeNet) from
            this machine; the goals against torchvision are ratios against it.
        peer_python: a Python with torch and torchvision (``./scripts/peer_env.sh`` makes
            ``.venv-peer``): runs ``benchmark/peer_torchvision.py`` at this run's sizes, after
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
            # Deferred: this module is read without TensorFlow (the command line's --help); only
            # resolving "auto" asks TensorFlow for GPUs.
            import tensorflow as tf

            gpu = bool(tf.config.list_physical_devices("GPU"))
            if gpu or {"avx512_bf16", "amx_bf16"} & cpu_info()[1]:
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

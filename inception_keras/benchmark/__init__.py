"""Speed measured against the machine's own limit: a roofline, training and inference throughput,
and the input pipeline on its own, all in one run.

:func:`run` (in :mod:`~inception_keras.benchmark.suite`) measures; :class:`BenchmarkConfig` (in
:mod:`~inception_keras.benchmark.config`, no TensorFlow) says what and for how long. The measuring
modules are imported when one of their names is first used.
"""

from inception_keras import lazy
from inception_keras.benchmark.config import DEFAULT_SECTIONS, SECTIONS, BenchmarkConfig
from inception_keras.benchmark.report import BenchmarkReport, save_json

__all__ = [
    "BenchmarkConfig",
    "BenchmarkReport",
    "DEFAULT_SECTIONS",
    "SECTIONS",
    "multiply_adds",
    "run",
    "save_json",
]
__getattr__, __dir__ = lazy.exports(__name__, {"multiply_adds": "measure", "run": "suite"})

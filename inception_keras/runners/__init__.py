"""Runners: any artefact - a ``.keras`` checkpoint, a SavedModel version, a ``.tflite`` or an
``.onnx`` file - loaded in the runtime that serves it and called like a function, from float32
``[B, H, W, 3]`` raw RGB pixels in [0, 255] to class probabilities ``[B, classes]``. One module
per runtime; :func:`load_runner` picks one from the path. ``evaluate``, ``predict``, ``explain``
and ``verify`` all go through it, so a checkpoint and every exported artefact are scored by the
same code.
"""

from inception_keras.runners.keras_checkpoint import KerasRunner
from inception_keras.runners.loading import (
    FORMAT_NAMES,
    artefact_format,
    asset_class_names,
    checkpoint_class_names,
    class_names,
    load_runner,
    shipped_class_names,
)
from inception_keras.runners.onnx import OnnxRunner
from inception_keras.runners.saved_model import SavedModelRunner
from inception_keras.runners.tflite import TFLiteRunner

__all__ = [
    "FORMAT_NAMES",
    "KerasRunner",
    "OnnxRunner",
    "SavedModelRunner",
    "TFLiteRunner",
    "artefact_format",
    "asset_class_names",
    "checkpoint_class_names",
    "class_names",
    "load_runner",
    "shipped_class_names",
]

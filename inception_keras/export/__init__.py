"""Exporters: the inference model (aux heads stripped, averaged weights, softmax out, raw RGB pixels
in [0, 255] in) as a SavedModel for TF Serving, TFLite models for LiteRT, and an ONNX model for ONNX
Runtime. One module per format (``saved_model``, ``tflite``, ``onnx``); the runners that load each
artefact in the runtime that will serve it are :mod:`inception_keras.runners`.

:func:`export` (:mod:`~inception_keras.export.versioned`) writes every format into one TF Serving
version directory ``base_dir/<name>/<version>/`` with a ``manifest.json``;
:mod:`~inception_keras.export.verify` proves one. :mod:`~inception_keras.export.config` holds the
formats, quantizations and tolerances without TensorFlow: it is imported with this package, the
exporters when one of their names is first used.
"""

from inception_keras import lazy
from inception_keras.export.config import (
    CALIBRATION_IMAGES,
    FORMATS,
    ONNX_OPSET,
    QUANTIZATIONS,
    Tolerances,
)
from inception_keras.files import MANIFEST, json_field

_VERSIONED = (
    "calibration_folder",
    "export",
    "export_checkpoint",
    "file_hashes",
    "run_data_config",
    "write_manifest",
)
__all__ = [
    "CALIBRATION_IMAGES",
    "FORMATS",
    "MANIFEST",
    "ONNX_OPSET",
    "QUANTIZATIONS",
    "Tolerances",
    "json_field",
    *_VERSIONED,
]
__getattr__, __dir__ = lazy.exports(__name__, dict.fromkeys(_VERSIONED, "versioned"))

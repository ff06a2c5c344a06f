"""Which runner a path needs (:func:`artefact_format`, :func:`load_runner`, with one-line errors
for a missing, unknown or corrupt file) and the class names an artefact ships with."""

import os
import zipfile

from inception_keras.errors import UsageError
from inception_keras.files import (
    CLASS_NAMES_ASSET,
    MANIFEST,
    TRAIN_CONFIG_FILE,
    json_field,
    metadata_path,
)
from inception_keras.runners.keras_checkpoint import KerasRunner
from inception_keras.runners.onnx import OnnxRunner
from inception_keras.runners.saved_model import SavedModelRunner
from inception_keras.runners.tflite import TFLiteRunner


def load_runner(path):
    """The runner for ``path``: ``.keras``, a SavedModel version directory, ``.tflite``, ``.onnx``.

    Raises :class:`UsageError` naming the path when it is none of these, does not exist, or is
    corrupt ("corrupt or not a TFLite file: PATH").
    """
    path = os.fspath(path)
    kind = artefact_format(path)
    runner = _load(kind, path)
    runner.class_names = shipped_class_names(path)
    if runner.class_names is not None and len(runner.class_names) != runner.num_classes:
        raise UsageError(
            f"{path!r} predicts {runner.num_classes} classes but its metadata names "
            f"{len(runner.class_names)}: {list(runner.class_names)[:10]}"
        )
    return runner


FORMAT_NAMES = {"keras": "Keras", "saved_model": "SavedModel", "tflite": "TFLite", "onnx": "ONNX"}
_RUNNERS = {
    "keras": KerasRunner,
    "saved_model": SavedModelRunner,
    "tflite": TFLiteRunner,
    "onnx": OnnxRunner,
}


def _load(kind, path):
    corrupt = f"corrupt or not a {FORMAT_NAMES[kind]} file: {path}"
    file = os.path.join(path, "saved_model.pb") if kind == "saved_model" else path
    if not os.path.isfile(file):
        raise UsageError(f"not a file: {file}")
    if kind == "keras" and not zipfile.is_zipfile(path):  # a .keras file is a zip archive
        raise UsageError(corrupt)
    try:
        return _RUNNERS[kind](path)
    except UsageError:
        raise
    except Exception as error:  # each runtime has its own parse errors (ORT's are not ValueError)
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise UsageError(f"{corrupt} ({first_line})" if first_line else corrupt) from error


def artefact_format(path):
    """``"keras"``, ``"saved_model"``, ``"tflite"`` or ``"onnx"``; ``UsageError`` otherwise."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UsageError(f"model {path!r} does not exist.")
    if path.endswith(".keras"):
        return "keras"
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return "saved_model"
    if path.endswith(".tflite"):
        return "tflite"
    if path.endswith(".onnx"):
        return "onnx"
    raise UsageError(
        f"model {path!r} is not a .keras file, a SavedModel directory "
        "(saved_model.pb), a .tflite or an .onnx file."
    )


def shipped_class_names(path):
    """The class names shipped with an artefact, or ``None``.

    Looked up where each format keeps them: ``manifest.json`` in the export's version directory
    (every format), the SavedModel's ``assets/class_names.txt``, the JSON file of the same name
    beside a converted ``.keras`` model (:func:`inception_keras.files.metadata_path`),
    ``train_config.json`` beside a ``.keras`` checkpoint.
    """
    path = os.fspath(path)
    directory = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    manifest = json_field(os.path.join(directory, MANIFEST), "class_names")
    if path.endswith(".keras"):
        return checkpoint_class_names(path) or _names(manifest)
    return _names(manifest) or asset_class_names(directory)


def checkpoint_class_names(path):
    """The names a ``.keras`` model's own files give: the JSON beside a converted model, else the
    ``train_config.json`` of the run that wrote it; ``None`` if neither names them."""
    names = json_field(metadata_path(path), "class_names")
    if not names:
        config = os.path.join(os.path.dirname(os.path.abspath(path)), TRAIN_CONFIG_FILE)
        names = json_field(config, "class_names")
    return _names(names)


def asset_class_names(directory):
    """The names in a SavedModel's ``assets/class_names.txt``, or ``None``."""
    asset = os.path.join(directory, "assets", CLASS_NAMES_ASSET)
    if not os.path.isfile(asset):
        return None
    with open(asset, encoding="utf-8") as f:
        return tuple(f.read().split("\n")[:-1])  # one name per line, each line ends in \n


def _names(names):
    return tuple(str(n) for n in names) if names else None


class_names = shipped_class_names  # its former name, still importable

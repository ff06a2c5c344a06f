"""One way to run any artefact: a callable from float32 ``[B, H, W, 3]`` raw RGB pixels in
[0, 255] to class probabilities ``[B, classes]``, loaded in the runtime that serves the format.

``evaluate``, ``predict`` and ``verify`` all go through :func:`load_runner`, so a checkpoint and
every exported artefact are scored by the same code.
"""

import os

import keras

from inception_keras.errors import UsageError
from inception_keras.export.onnx import OnnxRunner
from inception_keras.export.saved_model import SavedModelRunner
from inception_keras.export.tflite import TFLiteRunner
from inception_keras.files import (
    CLASS_NAMES_ASSET,
    MANIFEST,
    TRAIN_CONFIG_FILE,
    json_field,
    metadata_path,
)
from inception_keras.model import inference_model


class KerasRunner:
    """A ``.keras`` checkpoint (aux heads stripped) run by Keras."""

    def __init__(self, path):
        try:
            model = keras.saving.load_model(path, safe_mode=True)
        except (OSError, ValueError) as error:
            raise UsageError(f"cannot load the Keras model {path!r}: {error}") from None
        self.path = path
        self.model = inference_model(model)
        self.input_shape = tuple(self.model.input_shape)
        self.num_classes = int(self.model.output_shape[-1])

    def __call__(self, images):
        return keras.ops.convert_to_numpy(self.model.predict_on_batch(images))


def load_runner(path):
    """The runner for ``path``: ``.keras``, a SavedModel version directory, ``.tflite``, ``.onnx``.

    Raises ``ValueError`` naming the path when it is neither (or does not exist).
    """
    path = os.fspath(path)
    runner = _runner_class(path)(path)
    runner.class_names = class_names(path)
    if runner.class_names is not None and len(runner.class_names) != runner.num_classes:
        raise UsageError(
            f"{path!r} predicts {runner.num_classes} classes but its metadata names "
            f"{len(runner.class_names)}: {list(runner.class_names)[:10]}"
        )
    return runner


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


def _runner_class(path):
    kind = artefact_format(path)
    if kind == "keras":
        return KerasRunner
    if kind == "saved_model":
        return SavedModelRunner
    if kind == "tflite":
        return TFLiteRunner
    return OnnxRunner


def class_names(path):
    """The class names shipped with an artefact, or ``None``.

    Looked up where each format keeps them: ``manifest.json`` in the export's version directory
    (every format), the SavedModel's ``assets/class_names.txt``, the JSON file of the same name
    beside a converted ``.keras`` model (:func:`inception_keras.files.metadata_path`),
    ``train_config.json`` beside a ``.keras`` checkpoint.
    """
    path = os.fspath(path)
    if path.endswith(".keras"):
        names = json_field(metadata_path(path), "class_names")
        if names:
            return tuple(str(n) for n in names)
    directory = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    for name in (MANIFEST, TRAIN_CONFIG_FILE):
        names = json_field(os.path.join(directory, name), "class_names")
        if names:
            return tuple(str(n) for n in names)
    asset = os.path.join(directory, "assets", CLASS_NAMES_ASSET)
    if os.path.isfile(asset):
        with open(asset, encoding="utf-8") as f:
            return tuple(f.read().split("\n")[:-1])  # one name per line, each line ends in \n
    return None

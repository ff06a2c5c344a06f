"""One way to run any artefact: a callable from float32 ``[B, H, W, 3]`` raw RGB pixels in
[0, 255] to class probabilities ``[B, classes]``, loaded in the runtime that serves the format.

``evaluate``, ``predict`` and ``verify`` all go through :func:`load_runner`, so a checkpoint and
every exported artefact are scored by the same code.
"""

import os

import keras

from inception_keras.model import inference_model


class KerasRunner:
    """A ``.keras`` checkpoint (aux heads stripped) run by Keras."""

    def __init__(self, path):
        try:
            model = keras.saving.load_model(path, safe_mode=True)
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot load the Keras model {path!r}: {error}") from None
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
    if not os.path.exists(path):
        raise ValueError(f"model {path!r} does not exist.")
    if path.endswith(".keras"):
        return KerasRunner(path)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        from inception_keras.export.saved_model import SavedModelRunner

        return SavedModelRunner(path)
    if path.endswith(".tflite"):
        from inception_keras.export.tflite import TFLiteRunner

        return TFLiteRunner(path)
    if path.endswith(".onnx"):
        from inception_keras.export.onnx import OnnxRunner

        return OnnxRunner(path)
    raise ValueError(f"model {path!r} is not a .keras file, a SavedModel directory "
                     "(saved_model.pb), a .tflite or an .onnx file.")

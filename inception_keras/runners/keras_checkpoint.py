"""Runs a ``.keras`` checkpoint (aux heads stripped) in Keras."""

import keras

from inception_keras.errors import UsageError
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

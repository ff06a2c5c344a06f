"""Runs an exported SavedModel version through its two signatures, as TF Serving would."""

import os

import numpy as np
import tensorflow as tf

from inception_keras.runners.names import (
    BYTES_INPUT,
    INPUT_NAME,
    OUTPUT_NAME,
    SERVING_BYTES,
    SERVING_DEFAULT,
)


class SavedModelRunner:
    """Loads an exported version with ``tf.saved_model.load`` and calls its signatures.

    ``runner(images)`` maps float32 ``[B, H, W, 3]`` raw RGB to probabilities ``[B, classes]``;
    ``runner.predict_bytes([jpeg_or_png_bytes, ...])`` does the same from encoded images.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._loaded = tf.saved_model.load(self.path)
        self._images = self._loaded.signatures[SERVING_DEFAULT]
        self._bytes = self._loaded.signatures[SERVING_BYTES]
        self.input_shape = tuple(self._images.structured_input_signature[1][INPUT_NAME].shape)
        self.num_classes = int(self._images.structured_outputs[OUTPUT_NAME].shape[-1])

    def __call__(self, images):
        images = tf.convert_to_tensor(np.asarray(images, dtype=np.float32))
        return self._images(**{INPUT_NAME: images})[OUTPUT_NAME].numpy()

    def predict_bytes(self, encoded_images):
        encoded = tf.constant(list(encoded_images), dtype=tf.string)
        return self._bytes(**{BYTES_INPUT: encoded})[OUTPUT_NAME].numpy()

"""Random-weight classifiers whose answers depend on the image, for export and runner tests.

A freshly initialised GoogLeNet gives nearly the same probabilities to every image (its logits
differ between images by ~0.1), so agreement between an artefact and the Keras model would prove
little. :func:`spread_predictions` rescales the ``fc`` layer so the logits of the given images
have zero mean per class and a standard deviation of ``spread``: different images get different
top classes and probabilities that differ far beyond any export tolerance. The rescaling also
magnifies float error, so exports held to 1e-5 need a modest ``spread``.
"""

import keras
import numpy as np


def spread_predictions(model, images, spread=3.0):
    """Rescales ``model``'s ``fc`` layer in place; returns the model."""
    fc = model.get_layer("fc")
    features = keras.Model(model.input, fc.input)(np.asarray(images, "float32"), training=False)
    kernel, _ = fc.get_weights()  # the bias is replaced
    logits = np.asarray(features) @ kernel
    gain = spread / logits.std(axis=0).mean()
    fc.set_weights([kernel * gain, -gain * logits.mean(axis=0)])
    return model


def assert_image_dependent(probabilities, tolerance):
    """The answers differ between images: top classes and probabilities."""
    probabilities = np.asarray(probabilities)
    assert len(set(probabilities.argmax(axis=1))) > 1, probabilities
    assert np.abs(probabilities - probabilities[0]).max() > 1000 * tolerance, probabilities

"""Layers the paper needs that Keras does not ship.

Only local response normalisation: Keras 3 has no LRN layer, and GoogLeNet's stem uses two.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="inception_keras")
class LocalResponseNormalization(keras.layers.Layer):
    """Cross-channel local response normalisation (Krizhevsky et al. 2012), as in GoogLeNet's stem.

    ``y = x / (bias + alpha / size * sum_{window of size channels} x**2) ** beta``

    The defaults are the reference GoogLeNet model's (size 5, alpha 1e-4, beta 0.75, bias 1).
    That model, like Caffe and ONNX, divides ``alpha`` by the window ``size``;
    ``tf.nn.local_response_normalization`` does not, so the division happens here.
    It lowers to TF's ``LRN`` op, which TFLite and ONNX both have as a builtin.

    Args:
        size: number of channels in the window (odd; centred on each channel).
        alpha: scale of the sum of squares, before division by ``size``.
        beta: exponent.
        bias: additive constant (``k`` in the paper by Krizhevsky et al.).
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, bias=1.0, **kwargs):
        super().__init__(**kwargs)
        if int(size) != size or size < 1 or size % 2 == 0:
            raise ValueError(f"`size` must be a positive odd integer, got {size!r}.")
        self.size = int(size)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.bias = float(bias)

    def call(self, inputs):
        outputs = tf.nn.local_response_normalization(
            # TF has no reduced-precision CPU kernel for LRN: compute it in float32.
            tf.cast(inputs, tf.float32),
            depth_radius=self.size // 2,
            bias=self.bias,
            alpha=self.alpha / self.size,
            beta=self.beta,
        )
        return tf.cast(outputs, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, alpha=self.alpha, beta=self.beta, bias=self.bias)
        return config

"""Layers the paper needs that Keras does not ship, and two Keras layers that train faster.

Local response normalisation: Keras 3 has no LRN layer, and GoogLeNet's stem uses two.
:class:`Conv2D`: Keras' layer, with the filter gradient written out for training.
:class:`BatchNormalization`: Keras' layer, training with TensorFlow's fused kernel.
"""

import contextlib

import keras
import numpy as np
import tensorflow as tf

from inception_keras import runtime
from inception_keras.errors import UsageError

if keras.backend.backend() != "tensorflow":
    # Every model is built from these layers, and they, the tf.data pipelines and all exporters
    # are TensorFlow: fail when the first of them is imported, not deep inside.
    raise ImportError(
        f"inception_keras needs Keras on the TensorFlow backend, but Keras is using "
        f"{keras.backend.backend()!r}. Set KERAS_BACKEND=tensorflow (environment variable) or "
        '"backend": "tensorflow" in ~/.keras/keras.json.'
    )

# Ops traced under this name scope are meant to stay float32 in a full-integer model: TFLite's
# int8 SQRT and DIV kernels are scalar loops and XNNPACK runs only their float32 forms.
KEEP_FLOAT32_SCOPE = "keep_float32"

# LRN's window sums over many channels run as products with a band matrix this many channels wide.
LRN_CHANNEL_BLOCK = 32


@keras.saving.register_keras_serializable(package="inception_keras")
class LocalResponseNormalization(keras.layers.Layer):
    """Cross-channel local response normalisation (Krizhevsky et al. 2012), as in GoogLeNet's stem.

    ``y = x / (bias + alpha / size * sum_{window of size channels} x**2) ** beta``

    The defaults are the reference GoogLeNet model's (size 5, alpha 1e-4, beta 0.75, bias 1).
    That model, like Caffe and ONNX, divides ``alpha`` by the window ``size``;
    ``tf.nn.local_response_normalization`` does not, so the division happens here.
    It lowers to TF's ``LRN`` op; exports write it as faster elementwise ops
    (:func:`lrn_as_elementwise_ops`).

    Args:
        size: number of channels in the window (odd; centred on each channel).
        alpha: scale of the sum of squares, before division by ``size``.
        beta: exponent.
        bias: additive constant (``k`` in the paper by Krizhevsky et al.).
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, bias=1.0, **kwargs):
        super().__init__(**kwargs)
        if int(size) != size or size < 1 or size % 2 == 0:
            raise UsageError(f"`size` must be a positive odd integer, got {size!r}.")
        self.size = int(size)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.bias = float(bias)
        # Set only while exporting (see `lrn_as_elementwise_ops`); not part of the config.
        self.elementwise_inference = False

    def call(self, inputs, training=None):
        # TF has no reduced-precision CPU kernel for LRN, and float16's squares overflow past
        # 256: compute it in float32, except the bfloat16 training step (float32's range; its
        # written-out ops all have bfloat16 kernels, and the casts and float32 traffic cost more).
        if training and inputs.dtype == tf.bfloat16:
            return self._lrn_fast_gradient(inputs)
        x = tf.cast(inputs, tf.float32)
        # Training takes the faster written-out gradient, exports the elementwise form their
        # runtimes run fast; Keras/SavedModel inference keeps TF's single LRN op.
        if training:
            outputs = self._lrn_fast_gradient(x)
        elif self.elementwise_inference:
            outputs = self._lrn_elementwise(x)
        else:
            outputs = self._lrn(x)
        return tf.cast(outputs, inputs.dtype)

    def _lrn(self, x):
        return tf.nn.local_response_normalization(
            x,
            depth_radius=self.size // 2,
            bias=self.bias,
            alpha=self.alpha / self.size,
            beta=self.beta,
        )

    def _lrn_elementwise(self, x):
        """The same function as SQUARE, a 1x1 convolution with a band matrix (``alpha / size``
        folded into it, ``bias`` as its bias), SQRT, MUL and DIV: ops that XNNPACK (TFLite) and
        ONNX Runtime run fast, where neither has a fast LRN kernel.

        The power and the division are traced under the name scope :data:`KEEP_FLOAT32_SCOPE`:
        the full-integer TFLite export keeps the ops there in float32 (see its exporter).
        """
        channels = x.shape[-1]
        kernel = (self._band(channels, x.dtype) * (self.alpha / self.size))[None, None]
        d = tf.nn.bias_add(
            tf.nn.conv2d(tf.square(x), kernel, 1, "VALID"),
            tf.fill([channels], tf.constant(self.bias, x.dtype)),
        )
        with tf.name_scope(KEEP_FLOAT32_SCOPE):
            if self.beta == 0.75:
                root = tf.sqrt(d)
                return x / (root * tf.sqrt(root))
            if self.beta == 0.5:
                return x / tf.sqrt(d)
            return x * tf.pow(d, -self.beta)

    def _window_sum(self, x):
        """Sum over each channel's window as matrix products with a 0/1 band matrix (the band
        is symmetric, so this is also its own transpose).

        With many channels (GoogLeNet's norm2: 192) most of a full band matrix is zeros, so the
        channels are taken in blocks of :data:`LRN_CHANNEL_BLOCK` that share one small band
        matrix (a reshape, no copy), plus one thin product for the few channels whose window
        crosses a block boundary: about a quarter of the full product's work at 192 channels.
        """
        channels = x.shape[-1]
        flat = tf.reshape(x, [-1, channels])
        block = LRN_CHANNEL_BLOCK
        if channels % block or channels < 4 * block or self.size // 2 >= block:
            return tf.reshape(tf.matmul(flat, self._band(channels, x.dtype)), tf.shape(x))
        within = tf.reshape(
            tf.matmul(tf.reshape(flat, [-1, block]), self._band(block, x.dtype)), [-1, channels]
        )
        sources, crossing = self._crossing_band(channels, block)
        across = tf.matmul(tf.gather(flat, sources, axis=1), tf.constant(crossing, x.dtype))
        return tf.reshape(within + across, tf.shape(x))

    def _crossing_band(self, channels, block):
        """The channels within a window's reach of a block boundary (the sources), and a
        ``[sources, channels]`` 0/1 matrix: 1 where a channel of another block has the source
        in its window."""
        reach = self.size // 2
        sources = [
            b + offset for b in range(block, channels, block) for offset in range(-reach, reach)
        ]
        crossing = np.zeros((len(sources), channels), np.float32)
        for row, source in enumerate(sources):
            for target in range(max(0, source - reach), min(channels, source + reach + 1)):
                crossing[row, target] = source // block != target // block
        return sources, crossing

    def _band(self, channels, dtype):
        """``[channels, channels]``: 1 where two channels are within one window, else 0."""
        index = tf.range(channels)
        return tf.cast(tf.abs(index[:, None] - index[None, :]) <= self.size // 2, dtype)

    def _lrn_fast_gradient(self, x):
        """LRN with its gradient written out, for training.

        TF's ``LRNGrad`` CPU kernel is much slower than the forward op, and LRN was a large share
        of the paper variant's float32 training step (figures in the README's Performance
        section, from ``scripts/profile_train_step.py``). Here the forward pass keeps the normaliser
        ``d`` and ``d ** -beta`` for the backward pass, which is then elementwise ops and one
        band-matrix product.
        """
        scale = self.alpha / self.size

        @tf.custom_gradient
        def lrn(x):
            d = self.bias + scale * self._window_sum(tf.square(x))
            # d ** -0.75 (GoogLeNet's beta) as rsqrt(d) * sqrt(rsqrt(d)): cheaper than pow.
            factor = _inverse_power(d, self.beta)
            y = x * factor

            def grad(upstream):
                # y = x d^-beta, so dL/dx = g d^-beta - 2 scale beta x window_sum(g y / d).
                return upstream * factor - (2 * scale * self.beta) * x * self._window_sum(
                    upstream * y / d
                )

            return y, grad

        return lrn(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, alpha=self.alpha, beta=self.beta, bias=self.bias)
        return config


@contextlib.contextmanager
def lrn_as_elementwise_ops(model):
    """Within this block, ``model``'s LRN layers trace as elementwise ops and a 1x1 convolution
    instead of TF's single LRN op.

    For float exports: XNNPACK has no LRN kernel, so TFLite splits the delegated graph around an
    LRN op and runs it on its slow reference kernel, and ONNX Runtime's LRN is slow too (the
    ``bn`` variant, without LRN, ran about twice as fast in both). The full-integer TFLite model
    uses this form too, with the power and division kept in float32 (:data:`KEEP_FLOAT32_SCOPE`).
    """
    layers = [
        layer for layer in model._flatten_layers() if isinstance(layer, LocalResponseNormalization)
    ]
    for layer in layers:
        layer.elementwise_inference = True
    try:
        yield model
    finally:
        for layer in layers:
            layer.elementwise_inference = False


def _inverse_power(d, beta):
    """``d ** -beta``, with the common exponents as square roots."""
    if beta == 0.75:
        r = tf.math.rsqrt(d)
        return r * tf.sqrt(r)
    if beta == 0.5:
        return tf.math.rsqrt(d)
    return tf.pow(d, -beta)


# Named as Keras' layer on purpose: a .keras file stores weights under paths derived from the class
# name, so renaming it would keep every saved checkpoint from loading.
@keras.saving.register_keras_serializable(package="inception_keras")
class Conv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` whose training step computes the filter gradient as one matrix
    product per filter tap.

    TensorFlow's CPU kernel for the filter gradient (``Conv2DBackpropFilter``) ran several times
    slower than the forward convolution on GoogLeNet's large 3x3 convolutions, and was the
    largest part of the paper variant's float32 training step (docs/performance.md,
    ``scripts/profile_train_step.py --names``). For a stride-1 "same" convolution,
    ``dW[i, j] = X(shifted by i, j)^T dY`` summed over every pixel of the batch: K*K matrix
    products with a long inner dimension (``scripts/time_filter_gradients.py``).

    Only in training, and only where it measured faster: float32 on an x86 CPU without AVX-512
    and no GPU (with AVX-512, oneDNN's filter-gradient kernel runs as fast as its forward
    convolution and the per-tap form was slower, in float32 and in bfloat16), stride 1, "same"
    padding, no dilation or groups, channels last, 1x1 or 3x3 filters (a 5x5's 25 thinner
    products were slower), at least :attr:`MIN_PER_TAP_CHANNELS` input channels (conv1's 3
    channels make thin products) and maps of at least :attr:`MIN_PER_TAP_PIXELS` (GoogLeNet's
    conv2, 3a and 3b at 224 px; on smaller maps the extra ops lengthen the first, tracing step
    more than they save). Inference and exports run Keras' own call; config and weights are
    Keras' ``Conv2D``'s.
    """

    MIN_PER_TAP_CHANNELS = 16
    MIN_PER_TAP_PIXELS = 28 * 28
    #: None: decide by the machine (see above); True or False: per-tap wherever the layer's
    #: shapes allow, or never. Read when a training step is traced.
    PER_TAP_FILTER_GRADIENT = None

    def call(self, inputs, training=None):
        if not (training and self._per_tap_applies(inputs)):
            return super().call(inputs)
        bias = tf.convert_to_tensor(self.bias) if self.use_bias else None
        outputs = _conv_with_per_tap_filter_gradient(
            inputs, tf.convert_to_tensor(self.kernel), bias
        )
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def _per_tap_applies(self, inputs):
        wanted = self.PER_TAP_FILTER_GRADIENT
        if wanted is None:
            wanted = inputs.dtype == tf.float32 and _per_tap_suits_this_machine()
        return (
            wanted
            and tuple(self.strides) == (1, 1)
            and tuple(self.dilation_rate) == (1, 1)
            and self.groups == 1
            and self.padding == "same"
            and self.data_format == "channels_last"
            and tuple(self.kernel_size) in ((1, 1), (3, 3))
            and None not in inputs.shape[1:]
            and inputs.shape[-1] >= self.MIN_PER_TAP_CHANNELS
            and inputs.shape[1] * inputs.shape[2] >= self.MIN_PER_TAP_PIXELS
        )


def _per_tap_suits_this_machine():
    return runtime.x86_without_avx512() and not tf.config.list_physical_devices("GPU")


def _conv_with_per_tap_filter_gradient(x, kernel, bias=None):
    """A stride-1 "same" convolution (plus ``bias``) whose filter gradient is
    :func:`per_tap_filter_gradient`; the input gradient is TF's own kernel."""

    def input_and_filter_gradients(x, kernel, upstream):
        dx = tf.raw_ops.Conv2DBackpropInput(
            input_sizes=tf.shape(x),
            filter=kernel,
            out_backprop=upstream,
            strides=[1, 1, 1, 1],
            padding="SAME",
        )
        return dx, per_tap_filter_gradient(x, upstream, kernel.shape[:2])

    if bias is None:

        @tf.custom_gradient
        def conv(x, kernel):
            def grad(upstream):
                return input_and_filter_gradients(x, kernel, upstream)

            return tf.nn.conv2d(x, kernel, 1, "SAME"), grad

        return conv(x, kernel)

    @tf.custom_gradient
    def conv_bias(x, kernel, bias):
        def grad(upstream):
            # Summed in float32: TF's bfloat16 BiasAddGrad accumulates in bfloat16 and stalls
            # once the sum is large (oneDNN's fused filter-and-bias gradient sums in float32).
            total = tf.reduce_sum(tf.cast(upstream, tf.float32), axis=[0, 1, 2])
            return (*input_and_filter_gradients(x, kernel, upstream), tf.cast(total, bias.dtype))

        return tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "SAME"), bias), grad

    return conv_bias(x, kernel, bias)


def per_tap_filter_gradient(x, upstream, kernel_size):
    """The gradient of a stride-1 "same" convolution's ``[kh, kw, in, out]`` filter.

    Tap ``(i, j)`` is the input shifted by it times ``upstream``, summed over batch and pixels.
    Both are laid out flat over (image, padded row, padded column): the input zero-padded as
    "same" pads it, ``upstream`` zero-padded after its rows and columns to the same size. A shift
    by ``(i, j)`` is then an offset of ``i * padded width + j`` rows, so every tap multiplies two
    row ranges of the same two matrices (TF slices along the first axis without copying) and the
    padding's zeros drop the pixels that wrap around.
    """
    kh, kw = kernel_size
    channels, filters = x.shape[-1], upstream.shape[-1]
    padded_width = tf.shape(x)[2] + kw - 1
    padded = tf.reshape(
        tf.pad(x, [[0, 0], [kh // 2, kh // 2], [kw // 2, kw // 2], [0, 0]]), [-1, channels]
    )
    flat_upstream = tf.reshape(
        tf.pad(upstream, [[0, 0], [0, kh - 1], [0, kw - 1], [0, 0]]), [-1, filters]
    )
    length = tf.shape(padded)[0] - ((kh - 1) * padded_width + kw - 1)
    flat_upstream = flat_upstream[:length]
    taps = [
        [
            tf.matmul(
                padded[i * padded_width + j : i * padded_width + j + length],
                flat_upstream,
                transpose_a=True,
            )
            for j in range(kw)
        ]
        for i in range(kh)
    ]
    return tf.stack([tf.stack(row) for row in taps])


# Named as Keras' layer on purpose, like Conv2D above: saved checkpoints depend on the name.
@keras.saving.register_keras_serializable(package="inception_keras")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose training step runs TensorFlow's fused kernel.

    Keras 3 computes a batch norm's moments, normalisation and their gradients as a dozen
    separate ops (means, squared differences, tiles, products, casts to float32 and back); they
    were about a fifth of the ``bn``/``slim`` variants' float32 training step and a third in
    bfloat16 (docs/performance.md, ``scripts/profile_train_step.py --variant slim``).
    ``FusedBatchNormV3`` computes the same in one op and its gradient in another, reads bfloat16
    directly and accumulates in float32. Same config, weights and moving-statistics update as
    Keras' layer; inference and exports run Keras' own call. Where the fused kernel does not
    apply (not 4-D channels last, masks, renorm, synchronisation, epsilon under its 1.001e-5
    floor) and for float16 inputs (not measured) it is Keras' call.
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and mask is None and self._fused_applies(inputs)):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else tf.ones([channels], tf.float32)
        beta = self.beta if self.center else tf.zeros([channels], tf.float32)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs,
            tf.cast(gamma, tf.float32),
            tf.cast(beta, tf.float32),
            epsilon=self.epsilon,
            data_format="NHWC",
            is_training=True,
        )
        # The kernel returns the unbiased (n - 1) batch variance for running averages; Keras'
        # layer averages the biased one it normalises with.
        count = tf.cast(tf.size(inputs) // channels, tf.float32)
        variance = variance * (count - 1.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
        )
        return tf.cast(outputs, self.compute_dtype)

    def _fused_applies(self, inputs):
        return (
            len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and inputs.dtype in (tf.float32, tf.bfloat16)
            and not getattr(self, "renorm", False)
            and not getattr(self, "synchronized", False)
            and self.epsilon >= 1.001e-5
        )

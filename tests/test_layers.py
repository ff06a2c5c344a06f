import keras
import numpy as np
import pytest

from inception_keras import LocalResponseNormalization


def lrn_reference(x, size, alpha, beta, bias):
    """The reference (Caffe) formula, written out: alpha is divided by the window size."""
    channels = x.shape[-1]
    out = np.empty_like(x)
    for c in range(channels):
        lo, hi = max(0, c - size // 2), min(channels, c + size // 2 + 1)
        square_sum = np.sum(x[..., lo:hi] ** 2, axis=-1)
        out[..., c] = x[..., c] / (bias + alpha / size * square_sum) ** beta
    return out


@pytest.mark.parametrize(
    "params",
    [
        dict(size=5, alpha=1e-4, beta=0.75, bias=1.0),  # GoogLeNet's
        dict(size=3, alpha=0.5, beta=0.6, bias=2.0),  # large alpha: the /size convention matters
    ],
)
def test_lrn_matches_the_formula(params):
    rng = np.random.default_rng(0)
    # Large values so the normalisation term is far from 1 and a wrong convention shows.
    x = rng.normal(scale=40.0, size=(2, 3, 4, 11)).astype("float32")
    expected = lrn_reference(x.astype("float64"), **params)
    got = keras.ops.convert_to_numpy(LocalResponseNormalization(**params)(x))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # 160 channels: training sums windows by blocks of 32 channels; the formula still holds.
    wide = rng.normal(scale=40.0, size=(2, 3, 4, 160)).astype("float32")
    trained = LocalResponseNormalization(**params)(wide, training=True)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(trained),
        lrn_reference(wide.astype("float64"), **params),
        rtol=1e-5,
        atol=1e-6,
    )
    # The unnormalised input would be far off: the layer really changes values.
    assert np.max(np.abs(expected - x)) > 1.0


@pytest.mark.parametrize(
    "params, channels",
    [
        (dict(size=5, alpha=1e-4, beta=0.75, bias=1.0), 11),
        (dict(size=3, alpha=0.5, beta=0.6, bias=2.0), 11),
        (dict(size=5, alpha=1e-4, beta=0.75, bias=1.0), 192),  # norm2's: window sums by blocks
        (dict(size=7, alpha=0.5, beta=0.6, bias=2.0), 128),
    ],
)
def test_lrn_training_gradient_matches_tensorflows(params, channels):
    """Training uses a written-out gradient (faster than TF's LRNGrad); it must be TF's."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(scale=40.0, size=(2, 3, 4, channels)).astype("float32"))
    upstream = tf.constant(rng.normal(size=(2, 3, 4, channels)).astype("float32"))
    layer = LocalResponseNormalization(**params)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = layer(x, training=True)
        reference = layer(x, training=False)  # TF's LRN op and its registered gradient
        ours_loss, reference_loss = (tf.reduce_sum(y * upstream) for y in (ours, reference))
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-5, atol=1e-6)
    expected = tape.gradient(reference_loss, x).numpy()
    got = tape.gradient(ours_loss, x).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
    assert np.abs(expected - upstream.numpy()).max() > 0.1  # the normalisation shows in it


@pytest.mark.parametrize("beta", [0.75, 0.5, 0.6])
def test_lrn_elementwise_form_for_export_matches(beta):
    """Float exports write LRN as elementwise ops + a band convolution: the same function."""
    from inception_keras.layers import lrn_as_elementwise_ops

    x = np.random.default_rng(2).normal(scale=40.0, size=(2, 3, 4, 11)).astype("float32")
    inputs = keras.Input((3, 4, 11))
    model = keras.Model(inputs, LocalResponseNormalization(size=3, alpha=0.5, beta=beta)(inputs))
    expected = keras.ops.convert_to_numpy(model(x))
    with lrn_as_elementwise_ops(model):
        assert model.layers[-1].elementwise_inference
        got = keras.ops.convert_to_numpy(model(x))
    assert not model.layers[-1].elementwise_inference  # restored on leaving the block
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-6)
    assert np.abs(expected - x).max() > 1.0


def test_lrn_config_round_trip():
    layer = LocalResponseNormalization(size=3, alpha=2e-4, beta=0.5, bias=2.0, name="norm")
    clone = LocalResponseNormalization.from_config(layer.get_config())
    assert (clone.size, clone.alpha, clone.beta, clone.bias, clone.name) == (
        3,
        2e-4,
        0.5,
        2.0,
        "norm",
    )


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("training", [False, True])
def test_lrn_in_reduced_precision(policy, training):
    """Float32 inside, except bfloat16 training, which computes in bfloat16: both within
    bfloat16's rounding of the formula, and float16 squares that would overflow stay finite."""
    params = dict(size=5, alpha=1e-4, beta=0.75, bias=1.0)
    x = np.random.default_rng(3).uniform(0, 600, size=(2, 3, 4, 160)).astype("float32")
    y = LocalResponseNormalization(dtype=policy, **params)(x, training=training)
    assert keras.backend.standardize_dtype(y.dtype) == policy.removeprefix("mixed_")
    got = keras.ops.convert_to_numpy(keras.ops.cast(y, "float32"))
    expected = lrn_reference(x.astype("float64"), **params)
    assert np.isfinite(got).all()
    rounding = 2**-8 if policy == "mixed_bfloat16" else 2**-11  # half the dtype's epsilon
    # Keras rounds the input to the policy's dtype (u on x, under 2u on d, so 1.5u on d**-0.75)
    # and the output is rounded (u): 3.5u; bfloat16 training also rounds the window sums, the
    # normaliser and the two roots (about 4u more).
    tolerance = (8 if training and policy == "mixed_bfloat16" else 3.5) * rounding
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=1e-3)
    assert np.abs(expected - x).max() > 10  # the normalisation shows at this scale


@pytest.mark.parametrize("size", [0, 4, -1, 2.5])
def test_lrn_rejects_bad_size(size):
    with pytest.raises(ValueError, match="size"):
        LocalResponseNormalization(size=size)


def _conv_gradients(layer, x, training):
    """``(output, d loss / d input, d loss / d kernel[, d loss / d bias])`` and the op types of
    the traced gradient computation; the loss weighs every output differently."""
    import tensorflow as tf

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training)
            loss = tf.reduce_sum(y * tf.reshape(tf.range(tf.size(y), dtype=y.dtype), tf.shape(y)))
        return (y, *tape.gradient(loss, [x, *layer.trainable_weights]))  # kernel[, bias]

    ops = {op.type for op in step.get_concrete_function(x).graph.get_operations()}
    return [keras.ops.convert_to_numpy(t) for t in step(x)], ops


@pytest.mark.parametrize(
    "kernel, strides, channels, side, per_tap",
    [
        (3, 1, 16, 28, True),
        (5, 1, 24, 28, False),  # 5x5: TF's kernel
        (1, 1, 32, 28, True),
        (7, 2, 3, 28, False),  # conv1: strided, 3 channels - TF's kernel
        (3, 1, 8, 28, False),  # too few channels for the per-tap form
        (3, 1, 16, 27, False),  # 27 x 28, under the 28 x 28 pixels it takes: TF's kernel
    ],
)
def test_conv_training_gradient_matches_keras(
    kernel, strides, channels, side, per_tap, monkeypatch
):
    from inception_keras.layers import Conv2D

    monkeypatch.setattr(Conv2D, "PER_TAP_FILTER_GRADIENT", True)  # whatever this machine is

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, side, side + 1, channels)).astype("float32")
    options = dict(filters=12, kernel_size=kernel, strides=strides, padding="same")
    ours = Conv2D(activation="relu", **options)
    keras_conv = keras.layers.Conv2D(activation="relu", **options)
    ours.build(x.shape)
    keras_conv.build(x.shape)
    ours.set_weights([w + 0.1 for w in keras_conv.get_weights()])  # a nonzero bias: ReLU masks
    keras_conv.set_weights(ours.get_weights())
    # The oracle: Keras' own layer, differentiated by TensorFlow.
    expected, _ = _conv_gradients(keras_conv, x, training=True)
    got, ops = _conv_gradients(ours, x, training=True)
    for name, a, b in zip(("output", "input", "kernel", "bias"), got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-3 * np.abs(b).max(), err_msg=name)
    assert np.abs(expected[2]).max() > 1  # the kernel gradient is not trivially zero
    assert ("Conv2DBackpropFilter" not in ops) == per_tap, ops
    # Inference is Keras' call: the same ops as Keras' layer, no gradient override.
    assert (
        _conv_gradients(ours, x, training=False)[1]
        == _conv_gradients(keras_conv, x, training=False)[1]
    )


def test_conv_is_keras_conv_in_config_and_weights():
    from inception_keras.layers import Conv2D

    layer = Conv2D(8, 3, padding="same", activation="relu", name="c")
    layer.build((None, 5, 5, 16))
    clone = Conv2D.from_config(layer.get_config())
    assert isinstance(layer, keras.layers.Conv2D)
    assert clone.get_config() == layer.get_config()
    restored = keras.layers.Conv2D.from_config(layer.get_config())  # plain Keras reads it too
    restored.build((None, 5, 5, 16))
    restored.set_weights(layer.get_weights())


def _in_bfloat16(a):
    """``a`` rounded to bfloat16, returned as float32."""
    return keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.cast(a, "bfloat16"), "float32"))


def test_conv_training_gradient_in_bfloat16(monkeypatch):
    import tensorflow as tf

    from inception_keras.layers import Conv2D

    monkeypatch.setattr(Conv2D, "PER_TAP_FILTER_GRADIENT", True)

    x = np.random.default_rng(1).normal(size=(2, 28, 28, 16)).astype("float32")
    options = dict(filters=8, kernel_size=3, padding="same", activation="relu")
    ours = Conv2D(dtype="mixed_bfloat16", **options)
    keras_conv = keras.layers.Conv2D(dtype="mixed_bfloat16", **options)
    exact = keras.layers.Conv2D(**{**options, "activation": None})  # float32: see below
    weights = [
        _in_bfloat16(w)
        for w in (np.random.default_rng(2).normal(0, 0.1, (3, 3, 16, 8)), np.full(8, 0.1))
    ]
    for layer in (ours, keras_conv, exact):
        layer.build(x.shape)
        layer.set_weights(weights)
    got, ops = _conv_gradients(ours, x, training=True)
    assert "Conv2DBackpropFilter" not in ops and got[0].dtype.name == "bfloat16"
    np.testing.assert_array_equal(got[0], _conv_gradients(keras_conv, x, training=True)[0][0])

    # Keras' own bfloat16 layer is no oracle for the gradients: TensorFlow sums its bias gradient
    # in bfloat16, ~15% off here. A float32 convolution on the same bfloat16 inputs, weights and
    # loss weights is, with the ReLU's mask taken from the bfloat16 output (outputs near 0 may
    # change sign with the precision); what is left is bfloat16's rounding of the gradient.
    active = tf.constant(got[0].astype("float32") > 0, tf.float32)

    @tf.function
    def float32_gradients(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = exact(x) * active
            index = tf.reshape(tf.range(tf.size(y)), tf.shape(y))
            loss = tf.reduce_sum(y * tf.cast(tf.cast(index, tf.bfloat16), tf.float32))
        return tape.gradient(loss, [x, *exact.trainable_weights])

    expected = [t.numpy() for t in float32_gradients(_in_bfloat16(x))]
    for name, a, b in zip(("input", "kernel", "bias"), got[1:], expected):
        np.testing.assert_allclose(
            a.astype("float32"), b, rtol=0, atol=0.02 * np.abs(b).max(), err_msg=name
        )


@pytest.mark.parametrize(
    "machine_suits, dtype, per_tap",
    [
        (True, "float32", True),
        (False, "float32", False),  # AVX-512, a GPU or not x86: TF's kernel
        (True, "mixed_bfloat16", False),  # measured slower in bfloat16
    ],
)
def test_conv_per_tap_follows_the_machine_by_default(machine_suits, dtype, per_tap, monkeypatch):
    from inception_keras import layers

    assert layers.Conv2D.PER_TAP_FILTER_GRADIENT is None  # the default: decided by the machine
    monkeypatch.setattr(layers, "_per_tap_suits_this_machine", lambda: machine_suits)
    x = np.ones((1, 28, 28, 16), "float32")
    layer = layers.Conv2D(8, 3, padding="same", dtype=dtype)
    layer.build(x.shape)
    _, ops = _conv_gradients(layer, x, training=True)
    assert ("Conv2DBackpropFilter" not in ops) == per_tap, ops


def test_conv_per_tap_never(monkeypatch):
    from inception_keras import layers

    monkeypatch.setattr(layers, "_per_tap_suits_this_machine", lambda: True)
    monkeypatch.setattr(layers.Conv2D, "PER_TAP_FILTER_GRADIENT", False)
    x = np.ones((1, 28, 28, 16), "float32")
    layer = layers.Conv2D(8, 3, padding="same")
    layer.build(x.shape)
    assert "Conv2DBackpropFilter" in _conv_gradients(layer, x, training=True)[1]


def test_conv_per_tap_without_bias_matches_keras(monkeypatch):
    """The bn variant's convolutions have no bias."""
    from inception_keras.layers import Conv2D

    monkeypatch.setattr(Conv2D, "PER_TAP_FILTER_GRADIENT", True)
    x = np.random.default_rng(2).normal(size=(2, 28, 28, 16)).astype("float32")
    ours = Conv2D(8, 3, padding="same", use_bias=False)
    keras_conv = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)
    ours.build(x.shape)
    keras_conv.build(x.shape)
    keras_conv.set_weights(ours.get_weights())
    got, ops = _conv_gradients(ours, x, training=True)
    expected, _ = _conv_gradients(keras_conv, x, training=True)
    assert len(got) == 3 and "Conv2DBackpropFilter" not in ops, ops
    for name, a, b in zip(("output", "input", "kernel"), got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4 * np.abs(b).max(), err_msg=name)


def _batch_norm_step(layer, x, upstream):
    """``[output, d/dx, d/dgamma (d/dbeta without gamma), d/dbeta]`` of one training call, and
    the traced op types."""
    import tensorflow as tf

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * upstream)
        weights = [layer.gamma if layer.scale else layer.beta, layer.beta]
        return [y, *tape.gradient(loss, [x, *weights])]

    ops = {op.type for op in step.get_concrete_function(x).graph.get_operations()}
    results = [keras.ops.convert_to_numpy(keras.ops.cast(t, "float32")) for t in step(x)]
    return results, ops


@pytest.mark.parametrize(
    "policy, scale, fused, rtol",
    [
        ("float32", True, True, 1e-4),
        ("float32", False, True, 1e-4),  # the slim variant's, without gamma
        ("mixed_bfloat16", True, True, 2e-2),
        ("mixed_float16", True, False, 2e-3),  # Keras' call: float16 is left to it
    ],
)
def test_batch_norm_training_matches_keras(policy, scale, fused, rtol):
    import tensorflow as tf

    from inception_keras.layers import BatchNormalization

    rng = np.random.default_rng(4)
    x = tf.constant(rng.normal(loc=2.0, scale=3.0, size=(4, 5, 6, 8)).astype("float32"))
    upstream = tf.constant(rng.normal(size=(4, 5, 6, 8)).astype("float32"))
    options = dict(epsilon=1e-3, scale=scale, momentum=0.9, dtype=policy)
    ours, oracle = BatchNormalization(**options), keras.layers.BatchNormalization(**options)
    for layer in (ours, oracle):
        layer.build(x.shape)
        layer.set_weights([w + 0.5 * i for i, w in enumerate(layer.get_weights())])
    got, ops = _batch_norm_step(ours, x, upstream)
    expected, keras_ops = _batch_norm_step(oracle, x, upstream)
    assert ("FusedBatchNormV3" in ops) == fused, ops
    assert "FusedBatchNormV3" not in keras_ops
    for name, a, b in zip(("output", "input", "first weight", "beta"), got, expected):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max(), err_msg=name)
    # One step moved the moving statistics the same way (Keras' biased batch variance).
    for a, b in zip(ours.get_weights(), oracle.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert np.abs(oracle.moving_variance.numpy() - 1.5).max() > 0.1  # it did move
    # Inference is Keras' call, on the same moving statistics.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.cast(ours(x, training=False), "float32")),
        keras.ops.convert_to_numpy(keras.ops.cast(oracle(x, training=False), "float32")),
        rtol=1e-5,
        atol=1e-5,
    )


def test_batch_norm_is_keras_batch_norm_in_config():
    from inception_keras.layers import BatchNormalization

    layer = BatchNormalization(epsilon=1e-3, scale=False, name="b")
    layer.build((None, 3, 3, 4))
    assert isinstance(layer, keras.layers.BatchNormalization)
    restored = keras.layers.BatchNormalization.from_config(layer.get_config())
    restored.build((None, 3, 3, 4))
    restored.set_weights(layer.get_weights())
    assert BatchNormalization.from_config(layer.get_config()).get_config() == layer.get_config()

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
    # The unnormalised input would be far off: the layer really changes values.
    assert np.max(np.abs(expected - x)) > 1.0


@pytest.mark.parametrize(
    "params",
    [dict(size=5, alpha=1e-4, beta=0.75, bias=1.0), dict(size=3, alpha=0.5, beta=0.6, bias=2.0)],
)
def test_lrn_training_gradient_matches_tensorflows(params):
    """Training uses a written-out gradient (faster than TF's LRNGrad); it must be TF's."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(scale=40.0, size=(2, 3, 4, 11)).astype("float32"))
    upstream = tf.constant(rng.normal(size=(2, 3, 4, 11)).astype("float32"))
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


def test_lrn_keeps_reduced_precision_dtype():
    x = np.ones((1, 2, 2, 8), "float32")
    layer = LocalResponseNormalization(dtype="mixed_bfloat16")
    assert keras.backend.standardize_dtype(layer(x).dtype) == "bfloat16"


@pytest.mark.parametrize("size", [0, 4, -1, 2.5])
def test_lrn_rejects_bad_size(size):
    with pytest.raises(ValueError, match="size"):
        LocalResponseNormalization(size=size)

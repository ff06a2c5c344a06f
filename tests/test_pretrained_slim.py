"""TF-slim's Inception v1 checkpoint converted to the "slim" variant, checked against slim's network
written independently with TensorFlow ops (tests/slim_reference.py) on a random checkpoint that
uses slim's variable names."""

import numpy as np
import pytest
import slim_reference

import inception_keras as ik
from inception_keras import pretrained

SIZE = 224
# Our block names for slim's end points (slim counts blocks by position, not the paper's names).
END_POINTS = {"inception_3a": "Mixed_3b", "inception_4d": "Mixed_4e", "inception_5b": "Mixed_5c"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("slim") / "inception_v1.ckpt")
    values = slim_reference.write_slim_checkpoint(prefix, seed=3)
    return prefix, values


@pytest.fixture(scope="module")
def images():
    """Structured images (gradients and noise), so that outputs differ between images."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, SIZE, dtype="float32")
    gradient = np.stack(
        [
            ramp[None, :].repeat(SIZE, 0),
            ramp[:, None].repeat(SIZE, 1),
            255 - ramp[None, :].repeat(SIZE, 0),
        ],
        axis=-1,
    )
    noise = rng.uniform(0, 255, (SIZE, SIZE, 3)).astype("float32")
    return np.stack([gradient, noise, 0.5 * (gradient + noise)])


def relative_error(got, want):
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def test_converted_model_equals_slim(checkpoint, images):
    prefix, _ = checkpoint
    model = ik.GoogLeNet(weights=prefix, variant="slim")
    reference = slim_reference.slim_forward(prefix, slim_reference.slim_preprocess(images))
    features = ik.feature_model(model, list(END_POINTS) + ["predictions"])(images)
    for ours, theirs in END_POINTS.items():
        assert relative_error(np.asarray(features[ours]), reference[theirs]) < 1e-4, ours
    # Slim's 1001 classes minus background, renormalised, are our 1000 probabilities.
    want = reference["Predictions"][:, 1:]
    want = want / want.sum(axis=-1, keepdims=True)
    got = np.asarray(features["predictions"])
    np.testing.assert_allclose(got, want, atol=1e-4)
    # The images are told apart by far more than the tolerance: the check could fail.
    assert np.abs(got[0] - got[1]).max() > 100 * 1e-4
    assert got.argmax(-1).tolist() == (reference["Logits"][:, 1:].argmax(-1)).tolist()


def test_semantics_are_slims_not_the_papers(checkpoint):
    prefix, values = checkpoint
    model = ik.GoogLeNet(weights=prefix, variant="slim")
    assert model.get_layer("inception_3a_5x5").kernel_size == (3, 3)  # slim's "5x5" is 3x3
    assert model.get_layer("pool4").pool_size == (2, 2)
    assert model.get_layer("dropout").rate == pytest.approx(0.2)
    bn = model.get_layer("conv1_bn")
    assert not bn.scale and bn.epsilon == pytest.approx(0.001)
    # The background logit is dropped: slim's class k + 1 is our class k.
    fc = model.get_layer("fc").get_weights()
    np.testing.assert_array_equal(
        fc[0], values["InceptionV1/Logits/Conv2d_0c_1x1/weights"][0, 0, :, 1:]
    )
    np.testing.assert_array_equal(fc[1], values["InceptionV1/Logits/Conv2d_0c_1x1/biases"][1:])
    # The naming quirk: Mixed_5b's second branch-2 convolution is "Conv2d_0a_3x3".
    np.testing.assert_array_equal(
        model.get_layer("inception_5a_5x5").kernel.numpy(),
        values["InceptionV1/Mixed_5b/Branch_2/Conv2d_0a_3x3/weights"],
    )


@pytest.mark.slow
def test_headless_backbone_at_another_size(checkpoint):
    prefix, _ = checkpoint
    x = np.random.default_rng(1).uniform(0, 255, (2, 160, 160, 3)).astype("float32")
    model = ik.GoogLeNet(
        weights=prefix, variant="slim", include_top=False, input_shape=(160, 160, 3)
    )
    reference = slim_reference.slim_forward(prefix, slim_reference.slim_preprocess(x))
    assert relative_error(model.predict(x, verbose=0), reference["Mixed_5c"]) < 1e-4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(variant="paper"), "'slim' variant"),
        (dict(variant="slim", classes=10), "`classes` must be 1000"),
        (dict(variant="slim", include_aux=True), "no aux classifiers"),
    ],
)
def test_arguments_that_do_not_fit_the_checkpoint(checkpoint, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ik.GoogLeNet(weights=checkpoint[0], **kwargs)


def test_a_checkpoint_of_another_network_names_the_missing_variable(tmp_path, checkpoint):
    _, values = checkpoint
    broken = dict(values)
    del broken["InceptionV1/Mixed_4c/Branch_1/Conv2d_0b_3x3/weights"]
    prefix = str(tmp_path / "other.ckpt")
    import tensorflow as tf

    names = sorted(broken)
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[broken[n] for n in names],
    )
    with pytest.raises(pretrained.WeightsError, match="Mixed_4c/Branch_1/Conv2d_0b_3x3/weights"):
        ik.GoogLeNet(weights=prefix, variant="slim")

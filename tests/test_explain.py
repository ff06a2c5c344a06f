"""Grad-CAM and branch attribution (inception_keras.explain), their pictures and the ``explain``
command, each against an independent oracle: finite differences in float64 NumPy, a gradient tape
written out here with Table 1's widths typed in, and the built-in shapes' ground-truth masks."""

import keras
import numpy as np
import pytest

from inception_keras import explain, explained_files, localisation

# --------------------------------------------------------------------------
# Grad-CAM against finite differences on a small network written out in NumPy
# --------------------------------------------------------------------------
SIZE = 12


def _tiny_model(rng, softmax=True):
    """Input 12x12x3 -> conv 4 -> conv 6 stride 2 ("block", 6x6) -> conv 5 -> GAP -> fc (3)."""
    x = keras.Input((SIZE, SIZE, 3))
    y = keras.layers.Rescaling(1 / 255, name="rescale")(x)
    y = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(y)
    y = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="block")(y)
    y = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="head_conv")(y)
    y = keras.layers.GlobalAveragePooling2D(name="pool")(y)
    y = keras.layers.Dense(3, name="fc")(y)
    out = keras.layers.Activation("softmax" if softmax else None, name="predictions")(y)
    model = keras.Model(x, out)
    # Weights drawn here (no global seed touched), biases too, so that ReLUs cut both ways.
    model.set_weights([rng.normal(0, 0.6, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def _conv_same(x, kernel, bias, stride):
    """TensorFlow's "same" convolution of one image [H, W, C] in float64, then ReLU."""
    k, out_channels = kernel.shape[0], kernel.shape[-1]
    size = x.shape[0]
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    before = total // 2
    padded = np.pad(x, ((before, total - before), (before, total - before), (0, 0)))
    y = np.zeros((out, out, out_channels))
    for i in range(out):
        for j in range(out):
            window = padded[i * stride : i * stride + k, j * stride : j * stride + k]
            y[i, j] = np.tensordot(window, kernel, axes=3)
    return np.maximum(y + bias, 0)


def _upsample_bilinear(image, size):
    """Bilinear resize [h, w] -> [size, size] sampling at pixel centres (half-pixel offsets)."""

    def weights(n):
        src = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
        low = np.floor(src).astype(int)
        high = np.minimum(low + 1, n - 1)
        matrix = np.zeros((size, n))
        matrix[np.arange(size), low] += 1 - (src - low)
        matrix[np.arange(size), high] += src - low
        return matrix

    return weights(image.shape[0]) @ image @ weights(image.shape[1]).T


def _numpy_grad_cam(model, image, class_index=None):
    """Grad-CAM in float64 with d logit / d A by central differences: (map, logits)."""
    w = {layer.name: [v.astype(np.float64) for v in layer.get_weights()] for layer in model.layers}
    x = image.astype(np.float64) / 255
    x = _conv_same(x, *w["conv_a"], stride=1)
    block = _conv_same(x, *w["block"], stride=2)

    def logits(a):
        return _conv_same(a, *w["head_conv"], stride=1).mean(axis=(0, 1)) @ w["fc"][0] + w["fc"][1]

    z = logits(block)
    c = int(np.argmax(z)) if class_index is None else class_index
    grads, eps = np.zeros_like(block), 1e-5
    for index in np.ndindex(block.shape):
        step = np.zeros_like(block)
        step[index] = eps
        grads[index] = (logits(block + step)[c] - logits(block - step)[c]) / (2 * eps)
    cam = np.maximum(np.tensordot(block, grads.mean(axis=(0, 1)), axes=([2], [0])), 0)
    cam = _upsample_bilinear(cam, SIZE)
    return cam / cam.max() if cam.max() > 0 else cam, z


def test_grad_cam_equals_finite_differences_in_float64():
    rng = np.random.default_rng(1)
    model = _tiny_model(rng)
    images = rng.uniform(0, 255, (4, SIZE, SIZE, 3)).astype(np.float32)
    result = explain.explain(model, images, layer="block")
    for i, image in enumerate(images):
        expected, logits = _numpy_grad_cam(model, image)
        assert result.class_indices[i] == np.argmax(logits)
        np.testing.assert_allclose(result.heatmaps[i], expected, atol=1e-3)
        assert result.heatmaps[i].max() == pytest.approx(1.0)  # the test's maps are not all zero
        np.testing.assert_allclose(
            result.probabilities[i], np.exp(logits) / np.exp(logits).sum(), rtol=1e-4
        )
    # A class given per image, another for all: the map of that class's logit.
    chosen = [2, 0, 1, 2]
    maps = explain.grad_cam(model, images, class_index=chosen, layer="block")
    for i, image in enumerate(images):
        np.testing.assert_allclose(maps[i], _numpy_grad_cam(model, image, chosen[i])[0], atol=1e-3)
    maps = explain.grad_cam(model, images, class_index=1, layer="block")
    np.testing.assert_allclose(maps[3], _numpy_grad_cam(model, images[3], 1)[0], atol=1e-3)


def test_a_logits_model_and_a_frozen_one_give_the_same_maps():
    rng = np.random.default_rng(2)
    model = _tiny_model(rng)
    logits_model = _tiny_model(rng, softmax=False)
    logits_model.set_weights(model.get_weights())
    images = rng.uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)
    expected = explain.explain(model, images, layer="block")
    result = explain.explain(logits_model, images, layer="block")
    np.testing.assert_allclose(result.heatmaps, expected.heatmaps, atol=1e-6)
    # Without a softmax layer the probabilities are the logits' softmax.
    np.testing.assert_allclose(result.probabilities, expected.probabilities, rtol=1e-5)
    model.trainable = False  # no trainable weights: the tape must still record
    np.testing.assert_allclose(
        explain.grad_cam(model, images, layer="block"), expected.heatmaps, atol=1e-6
    )


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda m, x: explain.grad_cam(m, x, layer="inception_9z"),
            "'inception_9z' is not a layer",
        ),
        (lambda m, x: explain.grad_cam(m, x, layer="fc"), "'fc' has no spatial output"),
        (lambda m, x: explain.grad_cam(m, x, class_index=3), "`class_index` 3 is out of range"),
        (lambda m, x: explain.grad_cam(m, x, class_index=[0]), "1 entries for 2 images"),
        (lambda m, x: explain.grad_cam(m, x, class_index=1.5), "`class_index` must be None"),
        (lambda m, x: explain.grad_cam(m, x[0]), "add a batch axis"),
        (lambda m, x: explain.grad_cam(m, x[:, :40]), "are 40x32 but 'googlenet' takes 48x32"),
        (lambda m, x: explain.grad_cam(m, x[:0]), "`images` is empty"),
        (lambda m, x: explain.branch_attribution(m, x, batch_size=0), "`batch_size` must be"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(small_googlenet, call, message):
    from inception_keras.errors import UsageError

    images = np.zeros((2, 48, 32, 3), np.float32)
    with pytest.raises(UsageError, match=message) as error:
        call(small_googlenet, images)
    assert "\n" not in str(error.value)
    if "is not a layer" in message:  # it names layers that would do
        assert "inception_3a" in str(error.value) and "inception_5b" in str(error.value)


@pytest.fixture(scope="module")
def small_googlenet():
    from inception_keras import GoogLeNet

    return GoogLeNet(input_shape=(48, 32, 3), classes=3, variant="bn")


# --------------------------------------------------------------------------
# Every variant, aux heads or not, any input size, mixed precision
# --------------------------------------------------------------------------
def _tape_grad_cam(model, images, layer):
    """Grad-CAM as the keras.io example writes it, on the main head's fc output."""
    import tensorflow as tf

    grad_model = keras.Model(
        model.inputs, [model.get_layer(layer).output, model.get_layer("fc").output]
    )
    with tf.GradientTape() as tape:
        features, logits = grad_model(tf.constant(images), training=False)
        score = tf.reduce_sum(tf.reduce_max(logits, axis=-1))
    grads = tape.gradient(score, features)
    cam = tf.nn.relu(tf.reduce_sum(features * tf.reduce_mean(grads, (1, 2))[:, None, None], -1))
    cam = tf.image.resize(cam[..., None], images.shape[1:3])[..., 0].numpy()
    peak = cam.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["paper", "bn", "slim", "naive"])
@pytest.mark.parametrize("include_aux", [False, True])
def test_every_variant_with_and_without_aux_heads_at_a_small_odd_size(variant, include_aux):
    from inception_keras import GoogLeNet

    model = GoogLeNet(input_shape=(56, 40, 3), classes=4, variant=variant, include_aux=include_aux)
    images = np.random.default_rng(3).uniform(0, 255, (3, 56, 40, 3)).astype(np.float32)
    for layer in ("inception_3b", "inception_4e"):
        result = explain.explain(model, images, layer=layer)
        assert result.heatmaps.shape == (3, 56, 40) and result.heatmaps.dtype == np.float32
        assert np.all(np.isfinite(result.heatmaps))
        assert result.heatmaps.min() >= 0 and result.heatmaps.max() <= 1
        np.testing.assert_allclose(result.heatmaps, _tape_grad_cam(model, images, layer), atol=1e-5)
    main = model.predict(images, verbose=0)
    main = main[0] if include_aux else main
    np.testing.assert_allclose(result.probabilities, main, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_a_mixed_bfloat16_model_is_explained_in_float32():
    from inception_keras import GoogLeNet

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = GoogLeNet(input_shape=(48, 48, 3), classes=3, variant="bn", include_aux=True)
    images = np.random.default_rng(4).uniform(0, 255, (3, 48, 48, 3)).astype(np.float32)
    result = explain.explain(model, images, branches=True)
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"  # left as it was
    keras.mixed_precision.set_global_policy("float32")
    reference = GoogLeNet(input_shape=(48, 48, 3), classes=3, variant="bn", include_aux=True)
    reference.set_weights(model.get_weights())
    expected = explain.explain(reference, images, branches=True)
    assert result.heatmaps.dtype == np.float32 and np.all(np.isfinite(result.heatmaps))
    assert 0 <= result.heatmaps.min() and result.heatmaps.max() <= 1
    # bfloat16 keeps 3 significant digits: equality to 1e-5 means float32 throughout.
    np.testing.assert_allclose(result.heatmaps, expected.heatmaps, atol=1e-5)
    np.testing.assert_allclose(result.branches.shares, expected.branches.shares, atol=1e-5)


# --------------------------------------------------------------------------
# Branch attribution against a tape written out here, widths typed from Table 1
# --------------------------------------------------------------------------
# (#1x1, #3x3, #5x5, pool proj) of each block, typed from the paper's Table 1.
TABLE_1_WIDTHS = {
    "inception_3a": (64, 128, 32, 32),
    "inception_3b": (128, 192, 96, 64),
    "inception_4a": (192, 208, 48, 64),
    "inception_4b": (160, 224, 64, 64),
    "inception_4c": (128, 256, 64, 64),
    "inception_4d": (112, 288, 64, 64),
    "inception_4e": (256, 320, 128, 128),
    "inception_5a": (256, 320, 128, 128),
    "inception_5b": (384, 384, 128, 128),
}
# The naive module's pool branch passes its input through: 192 channels from conv2 into 3a, and
# each block's output depth (#1x1 + #3x3 + #5x5 + its input) into the next.
NAIVE_WIDTHS = {
    "inception_3a": (64, 128, 32, 192),
    "inception_3b": (128, 192, 96, 416),
    "inception_4a": (192, 208, 48, 832),
    "inception_4b": (160, 224, 64, 1280),
    "inception_4c": (128, 256, 64, 1728),
    "inception_4d": (112, 288, 64, 2176),
    "inception_4e": (256, 320, 128, 2640),
    "inception_5a": (256, 320, 128, 3344),
    "inception_5b": (384, 384, 128, 4048),
}


def _hand_shares(model, images, widths, class_index=None):
    """[images, 9, 4] shares of sum |dz/dA * A| per branch, by a tape on the fc output."""
    import tensorflow as tf

    blocks = list(widths)
    grad_model = keras.Model(
        model.inputs, [model.get_layer(b).output for b in blocks] + [model.get_layer("fc").output]
    )
    with tf.GradientTape() as tape:
        *features, logits = grad_model(tf.constant(images), training=False)
        chosen = np.argmax(logits.numpy(), -1) if class_index is None else class_index
        z = tf.reduce_sum(logits * tf.one_hot(chosen, logits.shape[-1]))
    grads = tape.gradient(z, features)
    shares = np.zeros((len(images), len(blocks), 4))
    for b, (block, a, g) in enumerate(zip(blocks, features, grads)):
        attribution = np.abs((g * a).numpy().astype(np.float64)).sum(axis=(1, 2))
        start = 0
        for branch, width in enumerate(widths[block]):
            shares[:, b, branch] = attribution[:, start : start + width].sum(-1)
            start += width
        assert start == attribution.shape[-1]
        shares[:, b] /= shares[:, b].sum(-1, keepdims=True)
    return shares, chosen


@pytest.mark.slow
def test_branch_shares_equal_a_hand_computation_with_table_1_widths():
    from inception_keras import GoogLeNet

    model = GoogLeNet(input_shape=(48, 48, 3), classes=5, variant="bn", include_aux=True)
    images = np.random.default_rng(5).uniform(0, 255, (4, 48, 48, 3)).astype(np.float32)
    result = explain.branch_attribution(model, images, batch_size=3)  # two batches
    expected, chosen = _hand_shares(model, images, TABLE_1_WIDTHS)
    assert result.blocks == tuple(TABLE_1_WIDTHS)
    assert result.branches == ("#1x1", "#3x3", "#5x5", "pool proj")
    assert result.labels == ("1x1", "1x1 → 3x3", "1x1 → 5x5", "3x3 max-pool → 1x1")
    np.testing.assert_array_equal(result.widths, list(TABLE_1_WIDTHS.values()))
    np.testing.assert_array_equal(result.class_indices, chosen)
    np.testing.assert_allclose(result.per_image, expected, atol=1e-5)
    np.testing.assert_allclose(result.shares, expected.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(result.shares.sum(axis=1), 1, atol=1e-9)
    # A given class, and the same shares from explain(..., branches=True).
    given = explain.explain(model, images, class_index=[0, 1, 2, 3], branches=True).branches
    np.testing.assert_allclose(
        given.shares,
        _hand_shares(model, images, TABLE_1_WIDTHS, [0, 1, 2, 3])[0].mean(0),
        atol=1e-5,
    )
    # The table prints every block with its shares.
    table = result.format(["a", "b", "c", "d", "e"]).splitlines()
    row = next(line for line in table if line.startswith("inception_4e"))
    assert f"{result.shares[6, 0]:.1%}" in row and "(31%)" in row  # 256 of 832 channels


def test_slim_variant_names_its_3x3_in_the_5x5_branch():
    from inception_keras import GoogLeNet

    model = GoogLeNet(input_shape=(40, 40, 3), classes=2, variant="slim")
    images = np.random.default_rng(6).uniform(0, 255, (2, 40, 40, 3)).astype(np.float32)
    result = explain.branch_attribution(model, images)
    assert result.labels[2] == "1x1 → 3x3"
    np.testing.assert_allclose(
        result.per_image, _hand_shares(model, images, TABLE_1_WIDTHS)[0], atol=1e-5
    )


@pytest.mark.slow
def test_naive_blocks_get_their_widths_from_the_table():
    from inception_keras import GoogLeNet

    model = GoogLeNet(input_shape=(32, 32, 3), classes=2, variant="naive")
    images = np.random.default_rng(7).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    result = explain.branch_attribution(model, images)
    assert result.branches[3] == "pool" and result.labels[3] == "3x3 max-pool"
    np.testing.assert_array_equal(result.widths, list(NAIVE_WIDTHS.values()))
    np.testing.assert_allclose(
        result.per_image, _hand_shares(model, images, NAIVE_WIDTHS)[0], atol=1e-5
    )


def test_branch_widths_follow_table_1_rows(monkeypatch):
    """The widths are read off TABLE_1: a changed row changes them, for both module kinds."""
    import dataclasses

    from inception_keras import architecture

    assert architecture.branch_widths() == TABLE_1_WIDTHS
    assert architecture.branch_widths(naive=True) == NAIVE_WIDTHS
    rows = list(architecture.TABLE_1)
    index = next(i for i, r in enumerate(rows) if getattr(r, "name", "") == "inception_3a")
    rows[index] = dataclasses.replace(rows[index], n1x1=10, pool_proj=7)
    monkeypatch.setattr(architecture, "TABLE_1", tuple(rows))
    assert architecture.branch_widths()["inception_3a"] == (10, 128, 32, 7)
    # Naive: 3a is 10 + 128 + 32 + 192 deep, which 3b's pool branch carries.
    assert architecture.branch_widths(naive=True)["inception_3b"][3] == 362


def test_a_network_not_built_from_table_1_is_refused(small_googlenet):
    from inception_keras.errors import UsageError

    x = keras.Input((32, 32, 3))
    y = keras.layers.Conv2D(8, 3, name="inception_3a")(x)
    y = keras.layers.GlobalAveragePooling2D()(y)
    model = keras.Model(x, keras.layers.Dense(2, name="fc")(y))
    with pytest.raises(UsageError, match="no inception block 'inception_3b'"):
        explain.branch_attribution(model, np.zeros((1, 32, 32, 3), np.float32))


# --------------------------------------------------------------------------
# The shapes generator's masks
# --------------------------------------------------------------------------
def test_generator_masks_come_with_the_data_sets_images(shapes_data_dir):
    import tensorflow_datasets as tfds

    from inception_keras import shapes

    with_masks = list(shapes.generate("validation", 128, 64, 0, masks=True))
    plain = list(shapes.generate("validation", 128, 64, 0))
    stored = tfds.as_numpy(
        tfds.load("shapes/smoke", split="validation", data_dir=str(shapes_data_dir))
    )
    for (image, label, mask), (plain_image, plain_label), example in zip(with_masks, plain, stored):
        np.testing.assert_array_equal(image, plain_image)
        np.testing.assert_array_equal(image, example["image"])
        assert label == plain_label == example["label"]
        assert mask.shape == (64, 64) and mask.dtype == np.float32
        assert 0 <= mask.min() and mask.max() == 1
        # The figure is where the mask is: its pixels differ from the background's.
        inside, outside = image[mask > 0.99].mean(0), image[mask < 0.01].mean(0)
        assert mask.sum() > 20 and not np.allclose(inside, outside, atol=5)
    assert len(with_masks) == 128


# --------------------------------------------------------------------------
# Localisation on the built-in shapes: the pointing game against their masks
# --------------------------------------------------------------------------
POINTING_IMAGES = 400


def test_pointing_game_on_hand_drawn_maps_and_masks():
    # A 7x7 disc of radius 2 at (3, 3), and a 9x9 ring (outer radius 4, inner 2) at (4, 4).
    ys, xs = np.mgrid[0:7, 0:7]
    disc = ((ys - 3) ** 2 + (xs - 3) ** 2 <= 4).astype(np.float32)
    ys, xs = np.mgrid[0:9, 0:9]
    distance = (ys - 4) ** 2 + (xs - 4) ** 2
    ring = ((distance <= 16) & (distance > 4)).astype(np.float32)
    extent = localisation.figure_extents(ring[None])[0]
    assert extent[4, 4] and not ring[4, 4] > 0.5  # the hole is the ring's extent, not the ring
    assert extent.sum() == (distance <= 16).sum()  # a disc's hull is the disc
    assert localisation.figure_extents(disc[None])[0].sum() == disc.sum()

    on, off, flat, empty = (np.zeros((7, 7), np.float32) for _ in range(4))
    on[3, 4] = 1.0  # inside the disc
    off[0, 6] = 1.0  # a corner, outside
    flat[:, 5:] = 0.5  # a plateau over columns 5-6: centroid (3, 6), outside the disc
    assert localisation.peak(flat) == (3, 6) and localisation.peak(empty) is None
    regions = np.repeat(disc[None] > 0.5, 4, axis=0)
    hits = localisation.pointing_hits(np.stack([on, off, flat, empty]), regions)
    assert hits.tolist() == [True, False, False, False]
    assert localisation.centre_hits(regions).all()
    assert not localisation.centre_hits(np.stack([ring > 0.5])).any()


@pytest.mark.slow
def test_grad_cam_points_at_the_figure_on_the_quickstart_model(quickstart_run):
    """The pointing game on the validation split of shapes/64px, against the figures' masks.

    Grad-CAM's maximum lands in the figure 1.5-2 times as often as a random point (the figures'
    mean area), but not more often than the image centre: the figures are large and about
    centred, and at 64 px the blocks' maps are 8x8 to 2x2 (README "Seeing what the network looks
    at" has the figures per layer, from ``scripts/make_doc_pictures.py``).
    """
    from inception_keras import shapes

    model = keras.saving.load_model(quickstart_run.checkpoint)
    examples = list(shapes.generate("validation", POINTING_IMAGES, 64, 0, masks=True))
    images = np.stack([e[0] for e in examples]).astype(np.float32)
    labels = np.array([e[1] for e in examples])
    masks = np.stack([e[2] for e in examples])
    figures = masks > 0.5
    # A point drawn uniformly at random lands in the figure as often as the figure covers the
    # image; the map's maximum must do clearly better, at an early block and at the default one.
    for layer, factor in (("inception_3a", 1.4), ("inception_4e", 1.5)):
        result = explain.explain(model, images, layer=layer)
        assert np.mean(result.predicted == labels) > 0.95  # the model has learned the set
        in_figure = localisation.pointing_hits(result.heatmaps, figures).mean()
        assert in_figure > factor * figures.mean(), (layer, in_figure, figures.mean())
    # The map is the class's: the map of another class than the figure's points at it less often.
    other = explain.grad_cam(model, images, class_index=(labels + 4) % 8)
    assert localisation.pointing_hits(other, figures).mean() < in_figure - 0.1


# --------------------------------------------------------------------------
# Pictures and the command line
# --------------------------------------------------------------------------
def _run_cli(capsys, *argv):
    from inception_keras.cli import main

    status = main(["explain", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def sample_images(tmp_path_factory):
    from inception_keras import shapes

    folder = tmp_path_factory.mktemp("samples")
    return shapes.write_images(str(folder), count=4, image_size=64, split="validation")


@pytest.mark.slow
def test_cli_explains_images_into_pictures(quickstart_run, sample_images, tmp_path, capsys):
    from inception_keras.predict import predict

    output = tmp_path / "pictures"
    status, out, err = _run_cli(
        capsys, *sample_images, "--model", quickstart_run.checkpoint, "--output-dir", output,
        "--branches", "--top-k", "2",
    )  # fmt: skip
    assert status == 0, err
    lines = out.splitlines()
    # One line per image, with the class and probability predict gives for it.
    expected = predict(str(quickstart_run.checkpoint), sample_images, top_k=1).predictions
    for line, prediction in zip(lines, expected):
        picture = output / (prediction.path.rsplit("/", 1)[1][: -len(".png")] + "_gradcam.png")
        assert line == (
            f"{prediction.path}: {prediction.labels[0]} {prediction.probabilities[0]:.2%} "
            f"-> {picture}"
        )
        assert picture.is_file()
    # The table and the picture of the branch shares, over the four images.
    assert any(line.startswith("inception_5b") for line in lines)
    assert "mean over 4 image(s)" in out and lines[-1] == f"-> {output / 'branches.png'}"
    assert (output / "branches.png").is_file()
    # A class by name: every image is explained for it.
    status, out, _ = _run_cli(
        capsys, *sample_images[:2], "--model", quickstart_run.checkpoint, "--output-dir", output,
        "--class", "star",
    )  # fmt: skip
    assert status == 0 and [line.split(": ")[1].split()[0] for line in out.splitlines()] == [
        "star",
        "star",
    ]


@pytest.mark.slow
def test_pictures_hold_the_image_the_map_and_the_class(quickstart_run, sample_images):
    from inception_keras.plots.explain import draw_branch_shares, draw_gradcam

    explained = explained_files.explain_files(
        quickstart_run.checkpoint, sample_images, branches=True
    )
    e, names = explained.explanation, explained.class_names
    c = int(e.class_indices[0])
    figure = draw_gradcam(
        explained.images[0], e.heatmaps[0], names[c], float(e.probabilities[0, c]),
        top_k=[(names[k], p) for k, p in e.top_k(3)[0]], layer=e.layer,
    )  # fmt: skip
    image_axes, map_axes, overlay_axes = figure.axes[:3]
    pixels = np.clip(np.round(explained.images[0]), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(image_axes.images[0].get_array(), pixels)
    np.testing.assert_array_equal(map_axes.images[0].get_array(), e.heatmaps[0])
    np.testing.assert_array_equal(overlay_axes.images[0].get_array(), pixels)
    np.testing.assert_array_equal(overlay_axes.images[1].get_array(), e.heatmaps[0])
    assert overlay_axes.images[1].get_alpha() == pytest.approx(0.4)
    assert map_axes.images[0].get_clim() == (0, 1)  # colours mean the same in every picture
    assert figure.get_suptitle() == f"{names[c]}  {e.probabilities[0, c]:.1%}"
    assert "top classes: " + f"{names[c]} {e.probabilities[0, c]:.1%}" in figure.get_supxlabel()
    assert "inception_4e" in map_axes.get_title()

    bars = draw_branch_shares(e.branches, names, "best.keras").axes[0]
    heights = np.array([p.get_height() for p in bars.patches]).reshape(4, 9).T
    np.testing.assert_allclose(heights, 100 * e.branches.shares, atol=1e-9)
    assert [t.get_text() for t in bars.get_xticklabels()] == [
        "3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b",
    ]  # fmt: skip
    legend = [t.get_text() for t in bars.get_legend().get_texts()]
    assert legend[:4] == [
        "pool proj: 3x3 max-pool → 1x1", "#5x5: 1x1 → 5x5", "#3x3: 1x1 → 3x3", "#1x1: 1x1",
    ]  # fmt: skip
    assert "4 images" in bars.get_title()


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    """A small bn GoogLeNet saved as a run's checkpoint, its class names beside it."""
    import json

    from inception_keras import GoogLeNet

    folder = tmp_path_factory.mktemp("run")
    GoogLeNet(input_shape=(64, 64, 3), classes=3, variant="bn").save(folder / "best.keras")
    (folder / "train_config.json").write_text(json.dumps({"class_names": ["a", "b", "c"]}))
    return folder / "best.keras"


@pytest.mark.slow
def test_cli_refuses_a_bad_layer_or_class_in_one_line(
    small_checkpoint, sample_images, tmp_path, capsys
):
    for flags, message in (
        (("--layer", "inception_6a"), "`layer` 'inception_6a' is not a layer of"),
        (
            ("--class", "dog"),
            "class 'dog' is neither an index nor one of the model's classes: a, b, c.",
        ),
        (("--class", "3"), "`class_index` 3 is out of range: the model has 3 classes"),
    ):
        status, out, err = _run_cli(
            capsys,
            *sample_images,
            "--model",
            small_checkpoint,
            "--output-dir",
            tmp_path / "p",
            *flags,
        )
        assert status == 2 and out == ""
        assert err.startswith("inception-keras explain: error: ") and message in err
        assert err.count("\n") == 1
    assert not (tmp_path / "p").exists()  # nothing written before the arguments are checked


@pytest.mark.slow
def test_cli_refuses_an_exported_artefact_naming_its_checkpoint(
    quickstart_run, sample_images, tmp_path, capsys
):
    version = str(quickstart_run.export)
    for artefact in (version, f"{version}/googlenet_float32.tflite"):
        status, out, err = _run_cli(
            capsys, *sample_images, "--model", artefact, "--output-dir", tmp_path / "p"
        )
        assert status == 2 and out == ""
        assert err == (
            f"inception-keras explain: error: {artefact} is an exported "
            f"{'SavedModel' if artefact == version else 'TFLite'} model, which has no gradients; "
            f"explaining needs its .keras checkpoint: use {quickstart_run.checkpoint}\n"
        )


def test_image_files_explained_are_still_importable_from_explain():
    """Their former home keeps handing them out (they moved to ``explained_files``)."""
    for name in ("ExplainedFiles", "load_checkpoint", "class_index_of", "explain_files"):
        assert getattr(explain, name) is getattr(explained_files, name)
    with pytest.raises(AttributeError, match="no attribute 'grad_cams'"):
        explain.grad_cams  # noqa: B018

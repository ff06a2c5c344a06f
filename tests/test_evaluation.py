import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import inception_keras as ik
from inception_keras.evaluation import crop_boxes, evaluate, evaluate_model, multi_crop

POSITIONS = ("top_left", "top_right", "bottom_left", "bottom_right", "centre", "whole")


def coordinate_image(height, width):
    """float32 image whose channel 0 is the row and channel 1 the column of each pixel.

    Bilinear resizing reproduces a linear ramp exactly (clamped at the borders), so every crop
    pixel tells which source position it was sampled from. Sides <= 256 keep values in [0, 255].
    """
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype("float32")


def sample_position(i, out_len, in_len):
    """Source coordinate that pixel i of a bilinear (half-pixel) resize in_len -> out_len reads."""
    return np.clip((i + 0.5) * in_len / out_len - 0.5, 0, in_len - 1)


def paper_boxes(height, width, size):
    """The 144 regions of Section 7, written out independently of the package, in the documented
    order: (scale, window top, window left, crop top, crop left, crop side, position, mirrored)."""
    boxes = []
    for reference_side in (256, 288, 320, 352):
        scale = round(size * reference_side / 224)
        if height <= width:
            long_side = round(width * scale / height)
        else:
            long_side = round(height * scale / width)
        slack = long_side - scale
        for offset in (0, slack // 2, slack):  # left/centre/right or top/centre/bottom square
            window_top, window_left = (0, offset) if height <= width else (offset, 0)
            d = scale - size
            offsets = {
                "top_left": (0, 0),
                "top_right": (0, d),
                "bottom_left": (d, 0),
                "bottom_right": (d, d),
                "centre": (d // 2, d // 2),
                "whole": (0, 0),
            }
            for position in POSITIONS:
                dy, dx = offsets[position]
                side = scale if position == "whole" else size
                for mirrored in (False, True):
                    boxes.append(
                        (
                            scale,
                            window_top,
                            window_left,
                            window_top + dy,
                            window_left + dx,
                            side,
                            position,
                            mirrored,
                        )
                    )
    return boxes


def as_tuple(box):
    return (
        box.scale,
        box.window_top,
        box.window_left,
        box.top,
        box.left,
        box.height,
        box.position,
        box.mirrored,
    )


def check_crop_pixels(crops, boxes, height, width, size, atol):
    """Each crop's corner pixels hold the source coordinates its box says they come from, and
    mirrored crops are flipped copies of their predecessor."""
    for crop, box in zip(crops, boxes):
        if box.mirrored:
            continue  # compared with its unmirrored twin below
        for i in (0, size - 1):
            # Crop pixel -> resized-image pixel (through the S x S resize unless the box is S x S)
            # -> source pixel (through the resize to the scale).
            row_offset = i if box.height == size else sample_position(i, size, box.height)
            col_offset = i if box.width == size else sample_position(i, size, box.width)
            row = sample_position(box.top + row_offset, box.resized_height, height)
            col = sample_position(box.left + col_offset, box.resized_width, width)
            np.testing.assert_allclose(crop[i, i, :2], [row, col], atol=atol, err_msg=str(box))
    mirrored = [b.mirrored for b in boxes]
    if any(mirrored):
        assert mirrored == [False, True] * (len(boxes) // 2)
        np.testing.assert_array_equal(crops[1::2], crops[0::2][:, :, ::-1])


@pytest.mark.parametrize("crops", [1, 10, 144])
def test_crop_counts_eager_and_in_tf_data(crops):
    image = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    out = multi_crop(image, crops, image_size=32)
    assert out.shape == (crops, 32, 32, 3) and out.dtype == tf.float32
    assert 0 <= float(tf.reduce_min(out)) and float(tf.reduce_max(out)) <= 255
    assert len(crop_boxes(37, 53, crops, image_size=32)) == crops

    # Graph mode with a size unknown until run time, as in a tf.data pipeline.
    dataset = tf.data.Dataset.from_generator(
        lambda: iter([image]), output_signature=tf.TensorSpec([None, None, 3], tf.uint8)
    ).map(lambda x: multi_crop(x, crops, image_size=32))
    (graph_out,) = list(dataset)
    np.testing.assert_allclose(graph_out, out, atol=1e-4)


@pytest.mark.parametrize("height, width", [(120, 200), (200, 120)], ids=["landscape", "portrait"])
def test_144_crops_are_the_papers_regions(height, width):
    boxes = crop_boxes(height, width, crops=144)
    assert [as_tuple(b) for b in boxes] == paper_boxes(height, width, 224)
    # Hand-computed: the long side at the four scales (200 * 256 / 120 = 426.7 -> 427, ...).
    long_sides = [max(b.resized_height, b.resized_width) for b in boxes[::36]]
    assert long_sides == [427, 480, 533, 587]
    first_scale = [(b.window_top, b.window_left) for b in boxes[:36:12]]
    assert first_scale == (
        [(0, 0), (0, 85), (0, 171)] if height < width else [(0, 0), (85, 0), (171, 0)]
    )

    crops = multi_crop(coordinate_image(height, width), crops=144).numpy()
    check_crop_pixels(crops, boxes, height, width, 224, atol=0.1)
    # Spot checks by hand: the first crop starts at the image's top-left pixel; the last square's
    # bottom-right crop at the largest scale ends at its bottom-right pixel; at scale 256 the
    # centre square's centre crop covers the middle of the image.
    np.testing.assert_allclose(crops[0, 0, 0, :2], [0, 0], atol=1e-4)
    # Index = ((scale * 3 + square) * 6 + position) * 2 + mirrored.
    last_corner = ((3 * 3 + 2) * 6 + 3) * 2
    assert (boxes[last_corner].scale, boxes[last_corner].position) == (352, "bottom_right")
    np.testing.assert_allclose(crops[last_corner, -1, -1, :2], [height - 1, width - 1], atol=1e-4)
    middle = crops[((0 * 3 + 1) * 6 + 4) * 2, 112, 112, :2]  # scale 256, centre square, centre
    np.testing.assert_allclose(middle, [(height - 1) / 2, (width - 1) / 2], atol=0.5)


def test_10_crops_are_corners_and_centre_of_the_resized_image():
    boxes = crop_boxes(120, 200, crops=10)
    assert {(b.resized_height, b.resized_width) for b in boxes} == {(256, 427)}
    corners = [(b.top, b.left) for b in boxes[::2]]
    assert corners == [(0, 0), (0, 203), (32, 0), (32, 203), (16, 101)]
    assert [b.position for b in boxes[::2]] == list(POSITIONS[:5])
    crops = multi_crop(coordinate_image(120, 200), crops=10).numpy()
    check_crop_pixels(crops, boxes, 120, 200, 224, atol=1e-3)

    # Downscaling a photo, by hand: 300 x 500 -> 110 x 183 (round(96 * 256 / 224) = 110), then
    # slices; plain bilinear as the single-crop transform (no antialiasing).
    image = np.random.default_rng(4).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    resized = tf.image.resize(image, [110, 183]).numpy()
    expected = [
        resized[top : top + 96, left : left + 96]
        for top, left in [(0, 0), (0, 87), (14, 0), (14, 87), (7, 43)]
    ]
    expected = np.stack([c for crop in expected for c in (crop, crop[:, ::-1])])
    np.testing.assert_allclose(multi_crop(image, crops=10, image_size=96), expected, atol=1e-4)


def test_scales_are_proportional_to_the_image_size():
    # round(96 * s / 224) for s = 256, 288, 320, 352.
    boxes = crop_boxes(120, 200, crops=144, image_size=96)
    assert [b.scale for b in boxes[::36]] == [110, 123, 137, 151]
    assert [as_tuple(b) for b in boxes] == paper_boxes(120, 200, 96)
    assert {(b.resized_height, b.resized_width) for b in crop_boxes(120, 200, 10, 96)} == {
        (110, 183)
    }
    crops = multi_crop(coordinate_image(120, 200), crops=144, image_size=96).numpy()
    assert crops.shape == (144, 96, 96, 3)
    check_crop_pixels(crops, boxes, 120, 200, 96, atol=0.1)


@pytest.mark.parametrize(
    "shape, fraction", [((120, 200), 0.875), ((57, 31), 0.875), ((90, 90), 0.5)]
)
def test_single_crop_is_the_central_crop_eval_transform(shape, fraction):
    image = np.random.default_rng(1).integers(0, 256, shape + (3,), dtype=np.uint8)
    expected = tf.image.resize(
        tf.image.central_crop(tf.cast(image, tf.float32), fraction), [64, 64]
    )
    out = multi_crop(image, crops=1, image_size=64, crop_fraction=fraction)
    np.testing.assert_array_equal(out[0], expected)

    (box,) = crop_boxes(*shape, crops=1, image_size=64, crop_fraction=fraction)
    crops = multi_crop(coordinate_image(*shape), 1, 64, fraction).numpy()
    check_crop_pixels(crops, [box], *shape, 64, atol=1e-3)


def test_single_crop_matches_the_preprocessing_module():
    from inception_keras import preprocessing

    image = np.random.default_rng(2).integers(0, 256, (75, 130, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        multi_crop(image, 1, 96)[0], preprocessing.eval_transform(image, 96)
    )


def half_and_half(mirrored=False):
    """100 x 200 image, left half black and right half white (or the mirror)."""
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 100:] = 255
    return image[:, ::-1] if mirrored else image


def bright_is_class_1(batch, calls):
    """A fake classifier: p(class 1) = 0.99 for an all-white crop, else 0.4."""
    calls.append(len(batch))
    p1 = np.where(batch.mean(axis=(1, 2, 3)) > 230, 0.99, 0.4)
    return np.stack([1 - p1, p1], axis=1)


# Mean p(class 1) of a half-and-half image, from its crops (see the boxes):
#  1 crop: the central crop is half white: 0.4 -> class 0.
#  10 crops: 2 corners white (0.99), 2 black and the centre half-half (0.4): 0.636 -> class 1,
#      although most crops vote for class 0.
#  144 crops: per scale the right square's 6 crops white, the other 12 mixed or black:
#      (6 * 0.99 + 12 * 0.4) / 18 -> class 1.
HALF_AND_HALF_P1 = {1: 0.4, 10: (2 * 0.99 + 3 * 0.4) / 5, 144: (6 * 0.99 + 12 * 0.4) / 18}


@pytest.mark.parametrize("crops", [1, 10, 144])
def test_probabilities_are_averaged_over_each_images_crops(crops):
    # Two half-and-half images (class 1) around an all-black one (class 0, p1 = 0.4 everywhere).
    examples = [
        (half_and_half(), 1),
        (np.zeros((100, 200, 3), np.uint8), 0),
        (half_and_half(mirrored=True), 1),
    ]
    calls = []
    result = evaluate(
        lambda x: bright_is_class_1(x, calls), examples, crops=crops, image_size=64, batch_size=100
    )

    p1 = HALF_AND_HALF_P1[crops]
    assert result.num_images == 3 and result.crops == crops
    assert result.top1 == pytest.approx((1 + 2 * (p1 > 0.5)) / 3)
    assert result.top5 == 1.0  # two classes
    assert result.loss == pytest.approx((-math.log(0.6) - 2 * math.log(p1)) / 3)
    # Crops of several images share a call, an image's crops may be split across calls.
    total = 3 * crops
    assert calls == [min(100, total - start) for start in range(0, total, 100)]


def test_top_k_ties_go_to_the_lower_class_and_logits_are_softmaxed():
    # A constant prediction over 10 classes: only labels 0..k-1 count as top-k.
    examples = [(np.zeros((40, 40, 3), np.uint8), label) for label in (0, 4, 5, 9)]
    uniform = evaluate(lambda x: np.full((len(x), 10), 0.1), examples, image_size=32)
    logits = evaluate(
        lambda x: tf.zeros((len(x), 10)), examples, image_size=32, from_logits=True, top_k=(1, 3, 5)
    )
    assert uniform.accuracy == {1: 0.25, 5: 0.5}
    assert logits.accuracy == {1: 0.25, 3: 0.25, 5: 0.5}
    assert uniform.loss == pytest.approx(math.log(10)) and logits.loss == pytest.approx(
        math.log(10)
    )


@pytest.mark.slow
def test_evaluate_model_with_a_small_googlenet():
    keras.utils.set_random_seed(0)
    model = ik.GoogLeNet(input_shape=(64, 64, 3), classes=5)
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(80, 100, 3), (120, 70, 3)]]
    labels = [0, 3]
    dataset = tf.data.Dataset.from_generator(
        lambda: zip(images, labels),
        output_signature=(tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([], tf.int32)),
    )
    for crops in (1, 10):
        # Batches of 7 crops: an image's 10 crops are split across calls.
        result = evaluate_model(model, dataset, crops=crops, batch_size=7)
        # The same numbers by hand: each image's crops in one batch, probabilities averaged.
        probs = np.stack(
            [
                np.mean(model(multi_crop(image, crops, 64), training=False), axis=0)
                for image in images
            ]
        )
        expected_loss = -np.mean(np.log(np.clip(probs[[0, 1], labels], 1e-7, 1)))
        expected_top1 = np.mean(probs.argmax(axis=1) == labels)
        assert result.num_images == 2 and result.crops == crops
        assert result.top5 == 1.0  # 5 classes
        assert result.top1 == expected_top1
        assert np.isfinite(result.loss) and result.loss == pytest.approx(expected_loss, rel=1e-4)


def test_bad_arguments_raise_value_errors_naming_them():
    image = np.zeros((40, 50, 3), np.uint8)
    examples = [(image, 1)]

    def predict(x):
        return np.full((len(x), 2), 0.5)

    cases = [
        ("crops", lambda: multi_crop(image, crops=5)),
        ("crops", lambda: crop_boxes(40, 50, crops=12)),
        ("crops", lambda: evaluate(predict, examples, crops=2)),
        ("image", lambda: multi_crop(np.zeros((40, 50, 1), np.uint8))),
        ("image", lambda: multi_crop(np.zeros((2, 40, 50, 3), np.uint8))),
        ("image", lambda: evaluate(predict, [(np.zeros((40, 50, 4), np.uint8), 0)])),
        ("image_size", lambda: multi_crop(image, image_size=0)),
        ("crop_fraction", lambda: multi_crop(image, crop_fraction=0.0)),
        ("batch_size", lambda: evaluate(predict, examples, batch_size=0)),
        ("top_k", lambda: evaluate(predict, examples, top_k=(0,))),
        (
            "predict_fn",
            lambda: evaluate(lambda x: np.zeros((len(x), 2)) - 1, examples, image_size=32),
        ),
        ("predict_fn", lambda: evaluate(lambda x: np.zeros((2,)), examples, image_size=32)),
        ("predict_fn", lambda: evaluate(None, examples)),
        ("examples", lambda: evaluate(predict, [(image, 7)], image_size=32)),
        ("examples", lambda: evaluate(predict, [])),
    ]
    for name, call in cases:
        with pytest.raises(ValueError, match=f"`{name}`"):
            call()

    tiny = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    with pytest.raises(ValueError, match="`image_size`"):
        evaluate_model(tiny, examples, image_size=64)
    any_size = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    with pytest.raises(ValueError, match="`image_size`"):
        evaluate_model(any_size, examples)
    assert evaluate_model(any_size, examples, image_size=32).num_images == 1


def test_the_confusion_matrix_comes_from_the_scored_top1_answers(tmp_path):
    # Plain grey images: every crop of one has the image's value, and the fake classifier's
    # answer is that value // 64 (probability 0.7, 0.1 for each other class).
    values = [10, 70, 130, 200, 200, 10]
    labels = [0, 1, 3, 3, 2, 1]
    examples = [(np.full((48, 60, 3), v, np.uint8), label) for v, label in zip(values, labels)]

    def grey_level(batch):
        level = np.clip(batch.mean(axis=(1, 2, 3)) // 64, 0, 3).astype(int)
        return np.where(np.arange(4) == level[:, None], 0.7, 0.1)

    # 10 crops in batches of 7: images' crops are split across calls.
    result = evaluate(grey_level, examples, crops=10, image_size=32, batch_size=7)
    assert result.labels.tolist() == labels
    assert result.predictions.tolist() == [0, 1, 2, 3, 3, 0]
    assert result.confusion.tolist() == [  # by hand: row true, column predicted
        [1, 0, 0, 0],
        [1, 1, 0, 0],
        [0, 0, 0, 1],
        [0, 0, 1, 1],
    ]
    assert result.top1 == np.trace(result.confusion) / 6
    assert [(p.true, p.predicted, p.count, p.share) for p in result.confused_pairs()] == [
        (2, 3, 1, 1.0),  # 1 image each: the larger share of its class first
        (1, 0, 1, 0.5),
        (3, 2, 1, 0.5),
    ]
    # Ties go to the lower class, as for top-1: a constant answer is class 0.
    uniform = evaluate(lambda x: np.full((len(x), 4), 0.25), examples, image_size=32)
    assert uniform.predictions.tolist() == [0] * 6
    assert uniform.top1 == np.trace(uniform.confusion) / 6 == 1 / 6


def test_evaluate_dataset_refuses_a_confusion_path_before_evaluating(tmp_path):
    from inception_keras.evaluation import evaluate_dataset

    with pytest.raises(ValueError, match="must be a .png"):  # not the missing model's error
        evaluate_dataset(str(tmp_path / "missing.keras"), confusion=str(tmp_path / "c.jpg"))

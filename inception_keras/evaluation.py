"""Single- and multi-crop evaluation (Section 7 of Szegedy et al., "Going Deeper with
Convolutions").

Three crop schemes, selected by the number of crops per image:

* ``crops=1``: one central crop keeping ``crop_fraction`` (0.875) of each side, resized to
  ``S x S``. This is the single-crop evaluation transform of :mod:`inception_keras.preprocessing`
  (``tf.image.central_crop`` then a bilinear resize).
* ``crops=10``: the classic 10-crop: the shorter side is resized to ``round(S * 256 / 224)``, then
  the four corner and the centre ``S x S`` crops and their mirrors.
* ``crops=144``: the paper's scheme: the shorter side is resized to 256, 288, 320 and 352 (scaled by
  ``S / 224`` for other input sizes), three squares of side = shorter side are taken (left, centre
  and right; top, centre and bottom for portrait images), and from each square the four corner and
  the centre ``S x S`` crops plus the whole square resized to ``S x S``, each with its mirror:
  4 scales x 3 squares x 6 crops x 2 = 144.

Crop order (deterministic, the same for every image): scale (ascending), square (left/top, centre,
right/bottom), position (``top_left``, ``top_right``, ``bottom_left``, ``bottom_right``,
``centre``, ``whole``), then mirror (unmirrored, mirrored). So crop ``2 * i + 1`` is the mirror of
crop ``2 * i``. :func:`crop_boxes` lists the regions in that order.

:func:`multi_crop` is pure TensorFlow (it runs eagerly, in ``tf.function`` and inside
``tf.data`` map functions, on images of unknown size). :func:`evaluate` takes any ``predict_fn``
from a float32 ``[B, S, S, 3]`` batch of raw pixels in [0, 255] to class probabilities, so the same
code scores a Keras model, a SavedModel signature, a TFLite interpreter or an ONNX Runtime session.
"""

import dataclasses
import operator
import os
import typing

import numpy as np
import tensorflow as tf

from inception_keras import preprocessing
from inception_keras.confusion import confused_pairs, confusion_matrix
from inception_keras.data import DataConfig, load_examples
from inception_keras.defaults import EVAL_BATCH_SIZE
from inception_keras.deprecation import renamed_arguments
from inception_keras.errors import UsageError
from inception_keras.model import inference_model
from inception_keras.plots.confusion import confusion_paths, save_confusion
from inception_keras.preprocessing_config import (  # noqa: F401 (re-exported)
    CROP_SCHEMES,
    DEFAULT_CROP_FRACTION,
)
from inception_keras.runners import load_runner

# The paper's sizes are given for a 224 input; other input sizes scale them proportionally.
REFERENCE_INPUT_SIZE = 224
CORNERS_AND_CENTRE = ("top_left", "top_right", "bottom_left", "bottom_right", "centre")
WHOLE = "whole"  # the whole window (square, or central region for crops=1) resized to S x S

# How far predict_fn's rows may sum from 1 and still count as probabilities: loose enough for
# float16 and dequantised int8 artefacts, tight enough to catch logits passed by mistake.
_PROBABILITY_TOLERANCE = 1e-2
# Keras' epsilon: a zero probability of the true class gives a large but finite loss.
_LOSS_EPSILON = 1e-7


@dataclasses.dataclass(frozen=True)
class _Scheme:
    """A multi-crop scheme: shorter sides at a 224 input, windows, crop positions in a window."""

    shorter_sides: tuple
    squares: bool  # three squares per scale (the paper) or the whole resized image (10-crop)
    positions: tuple


_MULTI_CROP_SCHEMES = {
    10: _Scheme((256,), squares=False, positions=CORNERS_AND_CENTRE),
    144: _Scheme((256, 288, 320, 352), squares=True, positions=CORNERS_AND_CENTRE + (WHOLE,)),
}


@dataclasses.dataclass(frozen=True)
class CropBox:
    """Where one crop comes from.

    The image is first resized to ``resized_height x resized_width`` (its shorter side becomes
    ``scale``; for ``crops=1`` there is no resize and ``scale`` is the original shorter side). In
    that resized image, ``window_*`` is the square the crop is taken from (the whole image for
    ``crops=10``, the central region for ``crops=1``) and ``top, left, height, width`` the crop
    itself, in absolute resized-image pixels. The crop is resized to ``S x S`` (a no-op for the
    ``S x S`` corner and centre crops) and flipped left-right if ``mirrored``.
    """

    index: int
    scale: int
    resized_height: int
    resized_width: int
    window_top: int
    window_left: int
    window_height: int
    window_width: int
    position: str  # one of CORNERS_AND_CENTRE or WHOLE
    top: int
    left: int
    height: int
    width: int
    mirrored: bool


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Multi-crop evaluation results.

    Attributes:
        accuracy: ``{k: top-k accuracy}`` for every requested ``k``.
        loss: mean cross-entropy of the crop-averaged probabilities.
        num_images: number of images scored.
        crops: crops per image.
        skipped_files: files of the data set that could not be read and were left out.
        labels, predictions: per image, in the order scored: the true class and the top-1
            class of the crop-averaged probabilities (ties to the lower index, as for
            ``accuracy``), int64 arrays.
        num_classes: the classifier's number of classes.
        class_names: the data set's class names (empty when not known).
    """

    accuracy: dict
    loss: float
    num_images: int
    crops: int
    skipped_files: int = 0
    labels: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)
    predictions: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)
    num_classes: int | None = None
    class_names: tuple = ()

    @property
    def confusion(self):
        """The confusion matrix, ``int64 [num_classes, num_classes]``: row true, column
        predicted (:func:`inception_keras.confusion.confusion_matrix`)."""
        return confusion_matrix(self.labels, self.predictions, self.num_classes)

    def confused_pairs(self, top=10):
        """The ``top`` most frequent mistakes (:func:`inception_keras.confusion.confused_pairs`)."""
        return confused_pairs(self.confusion, top)

    @property
    def top1(self):
        """Top-1 accuracy (``None`` if 1 was not in ``top_k``)."""
        return self.accuracy.get(1)

    @property
    def top5(self):
        """Top-5 accuracy (``None`` if 5 was not in ``top_k``)."""
        return self.accuracy.get(5)


# ---------------------------------------------------------------------------------------------
# Crops
# ---------------------------------------------------------------------------------------------


def num_crops(crops):
    """Number of crops per image of a scheme (validates it): 1, 10 or 144."""
    if crops not in CROP_SCHEMES:
        raise UsageError(f"`crops` must be one of {CROP_SCHEMES}; got {crops!r}.")
    return int(crops)


@renamed_arguments(central_fraction="crop_fraction")
def multi_crop(
    image, crops=1, input_size=REFERENCE_INPUT_SIZE, crop_fraction=DEFAULT_CROP_FRACTION
):
    """The evaluation crops of one image, in the module's crop order.

    Args:
        image: one decoded RGB image ``[H, W, 3]``, ``uint8`` or float in [0, 255], any size and
            aspect ratio (the size may be unknown until run time).
        crops: 1, 10 or 144 (see the module docstring).
        input_size: side ``S`` of the square crops (the model's input size).
        crop_fraction: fraction of each side kept by the ``crops=1`` central crop.

    Returns:
        float32 ``[crops, S, S, 3]`` with values in [0, 255].
    """
    size = _check_crop_args(crops, input_size, crop_fraction)
    image = tf.convert_to_tensor(image)
    if image.shape.rank != 3 or image.shape[-1] not in (3, None):
        raise UsageError(
            f"`image` must be one RGB image [height, width, 3]; got shape {image.shape}."
        )
    # Channels unknown until run time (e.g. tf.data from a generator): check them then.
    image = tf.ensure_shape(tf.cast(image, tf.float32), [None, None, 3])
    if crops == 1:  # the one eval transform that training, predict and export share
        return preprocessing.eval_transform(image, size, crop_fraction)[tf.newaxis]
    shape = tf.shape(image)

    outputs = []
    for resized_size, regions in _layout(shape[0], shape[1], crops, size, crop_fraction):
        # One resize per scale. The S x S crops are then plain slices, exact copies of the resized
        # pixels (tf.image.crop_and_resize would resample them with its own sampling grid).
        resized = image if resized_size is None else tf.image.resize(image, resized_size)
        for region in regions:
            box = tf.slice(resized, [region.top, region.left, 0], [region.height, region.width, 3])
            if region.position == WHOLE:
                box = tf.image.resize(box, [size, size])
            outputs.append(box)
    batch = tf.stack(outputs)
    if _mirrored(crops):
        # Each crop followed by its mirror: crop 2i+1 is crop 2i flipped.
        batch = tf.stack([batch, tf.image.flip_left_right(batch)], axis=1)
        batch = tf.reshape(batch, [-1, size, size, 3])
    # Bilinear resampling cannot overshoot, but float inputs may lie outside [0, 255].
    return tf.clip_by_value(batch, 0.0, 255.0)


@renamed_arguments(central_fraction="crop_fraction")
def crop_boxes(
    height,
    width,
    crops=1,
    input_size=REFERENCE_INPUT_SIZE,
    crop_fraction=DEFAULT_CROP_FRACTION,
):
    """The regions :func:`multi_crop` takes from a ``height x width`` image: a list of
    :class:`CropBox`, in crop order. Runs eagerly.
    """
    size = _check_crop_args(crops, input_size, crop_fraction)
    if min(operator.index(height), operator.index(width)) < 1:
        raise UsageError(f"`height` and `width` must be positive; got {height} x {width}.")
    boxes = []
    for _, regions in _layout(tf.constant(height), tf.constant(width), crops, size, crop_fraction):
        for region in regions:
            for mirrored in (False, True) if _mirrored(crops) else (False,):
                fields = {k: int(v) for k, v in region._asdict().items() if k != "position"}
                boxes.append(
                    CropBox(index=len(boxes), position=region.position, mirrored=mirrored, **fields)
                )
    return boxes


def _mirrored(crops):
    """Whether a scheme adds the mirror of every crop (all but the single central crop)."""
    return crops != 1


class _Region(typing.NamedTuple):
    """An unmirrored crop, fields as in :class:`CropBox`; the numbers are int32 scalar tensors
    or Python ints."""

    scale: object
    resized_height: object
    resized_width: object
    window_top: object
    window_left: object
    window_height: object
    window_width: object
    position: str
    top: object
    left: object
    height: object
    width: object


def _layout(height, width, crops, size, crop_fraction):
    """The unmirrored crops of an ``height x width`` image (int32 scalar tensors), grouped by
    resize: a list of ``(resized_size, regions)``, ``resized_size`` ``None`` for "no resize".

    The only description of the schemes' geometry: :func:`multi_crop` cuts these regions and
    :func:`crop_boxes` reports them.
    """
    if crops == 1:
        top, left, crop_height, crop_width = _central_window(height, width, crop_fraction)
        region = _Region(
            tf.minimum(height, width),
            height,
            width,
            top,
            left,
            crop_height,
            crop_width,
            WHOLE,
            top,
            left,
            crop_height,
            crop_width,
        )
        return [(None, [region])]

    scheme = _MULTI_CROP_SCHEMES[crops]
    groups = []
    for shorter_side in scheme.shorter_sides:
        # round(), not int(): the paper's sizes are 256..352 at 224, so 96 gives 110, 123, 137, 151.
        scale = round(size * shorter_side / REFERENCE_INPUT_SIZE)
        resized_height, resized_width = _shorter_side_to(height, width, scale)
        if scheme.squares:
            windows = _three_squares(resized_height, resized_width)
        else:
            windows = [(0, 0, resized_height, resized_width)]
        regions = []
        for window in windows:
            for position in scheme.positions:
                box = window if position == WHOLE else _square_in(window, position, size)
                regions.append(
                    _Region(scale, resized_height, resized_width, *window, position, *box)
                )
        groups.append(((resized_height, resized_width), regions))
    return groups


def _central_window(height, width, fraction):
    """(top, left, height, width) of ``tf.image.central_crop(image, fraction)``, by its formula:
    offsets rounded down in float64, size = side - 2 * offset."""

    def offset(side):
        side = tf.cast(side, tf.float64)
        return tf.cast((side - side * fraction) / 2, tf.int32)

    top, left = offset(height), offset(width)
    return top, left, height - 2 * top, width - 2 * left


def _shorter_side_to(height, width, scale):
    """Size with the shorter side ``scale`` and the aspect ratio kept (longer side rounded)."""
    ratio = scale / tf.cast(tf.minimum(height, width), tf.float64)
    new_height = tf.cast(tf.round(tf.cast(height, tf.float64) * ratio), tf.int32)
    new_width = tf.cast(tf.round(tf.cast(width, tf.float64) * ratio), tf.int32)
    return new_height, new_width


def _three_squares(height, width):
    """Windows (top, left, side, side) of the first, centre and last square of side = shorter
    side along the longer side: left/centre/right (landscape) or top/centre/bottom (portrait)."""
    side = tf.minimum(height, width)
    slack_y, slack_x = height - side, width - side  # one of them is 0
    return [
        (0, 0, side, side),
        (slack_y // 2, slack_x // 2, side, side),
        (slack_y, slack_x, side, side),
    ]


def _square_in(window, position, size):
    """(top, left, size, size) of a corner or the centre ``size x size`` crop of a window."""
    top, left, height, width = window
    slack_y, slack_x = height - size, width - size
    offsets = {
        "top_left": (0, 0),
        "top_right": (0, slack_x),
        "bottom_left": (slack_y, 0),
        "bottom_right": (slack_y, slack_x),
        "centre": (slack_y // 2, slack_x // 2),
    }
    dy, dx = offsets[position]
    return top + dy, left + dx, size, size


def _check_crop_args(crops, input_size, crop_fraction):
    """Validates the crop arguments; returns ``input_size`` as an int."""
    num_crops(crops)
    try:
        size = operator.index(input_size)
    except TypeError:
        size = 0
    if size < 1:
        raise UsageError(f"`input_size` must be a positive integer; got {input_size!r}.")
    if not 0 < crop_fraction <= 1:
        raise UsageError(f"`crop_fraction` must be in (0, 1]; got {crop_fraction!r}.")
    return size


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


@renamed_arguments(central_fraction="crop_fraction")
def evaluate(
    predict_fn,
    examples,
    crops=1,
    input_size=REFERENCE_INPUT_SIZE,
    batch_size=EVAL_BATCH_SIZE,
    top_k=(1, 5),
    crop_fraction=DEFAULT_CROP_FRACTION,
    from_logits=False,
):
    """Scores a classifier with single- or multi-crop evaluation.

    Each image's crops are classified and their probabilities averaged (the paper averages the
    softmax outputs); accuracy and loss are computed on the averages.

    Args:
        predict_fn: maps a float32 numpy batch ``[B, S, S, 3]`` of raw pixels in [0, 255] to class
            probabilities ``[B, C]`` (numpy, tensor, or a dict with a single such entry as
            SavedModel signatures return), e.g. ``model.predict_on_batch``, a TFLite or ONNX
            Runtime wrapper. ``B`` is at most ``batch_size``; the last call may be smaller.
        examples: a ``tf.data.Dataset`` or an iterable of ``(image, label)`` pairs: one decoded
            RGB image ``[H, W, 3]`` (uint8 or float in [0, 255], any size) and an integer label.
        crops: 1, 10 or 144 crops per image (see the module docstring).
        input_size: side ``S`` of the model's square input.
        batch_size: crops per ``predict_fn`` call; crops of consecutive images share a batch, and
            an image's 144 crops are split across calls when they do not fit.
        top_k: the ``k`` of the reported top-k accuracies. Ties between probabilities go to the
            lower class index, so a constant prediction is not "correct" for every label.
        crop_fraction: fraction of each side kept by the ``crops=1`` central crop.
        from_logits: ``predict_fn`` returns logits; a softmax is applied before averaging.

    Returns:
        An :class:`EvalResult`.
    """
    if not callable(predict_fn):
        raise UsageError(f"`predict_fn` must be callable; got {type(predict_fn).__name__}.")
    n = num_crops(crops)
    size = _check_crop_args(crops, input_size, crop_fraction)
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise UsageError(f"`batch_size` must be a positive integer; got {batch_size!r}.")
    top_k = tuple(top_k)
    if not top_k or any(not isinstance(k, (int, np.integer)) or k < 1 for k in top_k):
        raise UsageError(f"`top_k` must be positive integers; got {top_k!r}.")

    def to_crops(image, label):
        image_crops = multi_crop(image, crops, size, crop_fraction)
        return image_crops, tf.fill([n], tf.cast(label, tf.int64))

    # Images needed to fill one batch, run in parallel (at most one per core): enough to keep
    # predict_fn fed, while at 144 crops only one image's crops are being cut at a time.
    parallel = min(os.cpu_count() or 1, max(1, batch_size // n))
    dataset = (
        _as_dataset(examples)
        .map(to_crops, num_parallel_calls=parallel, deterministic=True)
        .unbatch()
        .batch(batch_size)
        .prefetch(1)
    )

    hits = dict.fromkeys(top_k, 0)
    loss_sum, count = 0.0, 0
    labels_seen, predictions = [], []  # per image, for the confusion matrix
    # Probabilities and labels of crops whose image is not complete yet (fewer than n rows).
    pending_probs, pending_labels = None, np.zeros([0], np.int64)
    for batch, labels in dataset:
        probs = _predict(predict_fn, batch.numpy(), from_logits)
        pending_probs = probs if pending_probs is None else np.concatenate([pending_probs, probs])
        pending_labels = np.concatenate([pending_labels, labels.numpy()])
        done = len(pending_labels) // n * n
        if done:
            mean_probs = pending_probs[:done].reshape(done // n, n, -1).mean(axis=1)
            ranks, losses = _score(mean_probs, pending_labels[:done:n])
            for k in top_k:
                hits[k] += int(np.sum(ranks < k))
            loss_sum += float(np.sum(losses))
            count += done // n
            labels_seen.append(pending_labels[:done:n])
            predictions.append(np.argmax(mean_probs, axis=1))  # the first maximum, as in ranks
            pending_probs, pending_labels = pending_probs[done:], pending_labels[done:]

    if count == 0:
        raise UsageError("`examples` is empty: nothing to evaluate.")
    return EvalResult(
        accuracy={k: hits[k] / count for k in top_k},
        loss=loss_sum / count,
        num_images=count,
        crops=n,
        labels=np.concatenate(labels_seen),
        predictions=np.concatenate(predictions).astype(np.int64),
        num_classes=int(mean_probs.shape[1]),
    )


@renamed_arguments(central_fraction="crop_fraction")
def evaluate_model(
    model,
    examples,
    crops=1,
    batch_size=EVAL_BATCH_SIZE,
    top_k=(1, 5),
    crop_fraction=DEFAULT_CROP_FRACTION,
    input_size=None,
    from_logits=False,
):
    """:func:`evaluate` for a Keras classifier (aux heads, if any, are ignored).

    ``input_size`` defaults to the model's square input size; it is required for a model built
    with ``input_shape=(None, None, 3)``. Other arguments as for :func:`evaluate`.
    """
    model = inference_model(model)
    height, width = model.input_shape[1:3]
    if input_size is None:
        if height is None or height != width:
            raise UsageError(
                f"`input_size` is needed: the model's input is {height} x {width}, not a fixed "
                "square."
            )
        input_size = height
    elif height is not None and (height, width) != (input_size, input_size):
        raise UsageError(
            f"`input_size` {input_size!r} does not match the model's input {height} x {width}."
        )
    return evaluate(
        model.predict_on_batch,
        examples,
        crops=crops,
        input_size=input_size,
        batch_size=batch_size,
        top_k=top_k,
        crop_fraction=crop_fraction,
        from_logits=from_logits,
    )


def evaluate_dataset(
    model,
    data_config=DataConfig(),
    crops=1,
    batch_size=EVAL_BATCH_SIZE,
    top_k=(1, 5),
    confusion=None,
):
    """Scores a saved model on a data set's validation part: ``inception-keras evaluate``.

    Args:
        model: a ``.keras`` checkpoint, an exported SavedModel version directory, a ``.tflite``
            or an ``.onnx`` file (see :func:`inception_keras.runners.load_runner`).
        data_config: the data (a :class:`~inception_keras.data.DataConfig`); its validation part
            is scored (``validation_split="test"`` for a tfds test split) with its
            ``crop_fraction`` for single-crop evaluation. Its class count must be the model's.
        crops, batch_size, top_k: as for :func:`evaluate`; the input size is the model's.
        confusion: a ``.png`` path: the confusion matrix is drawn there, and its counts written
            to the ``.csv`` beside it (:func:`inception_keras.plots.confusion.save_confusion`).

    Returns:
        An :class:`EvalResult` whose ``skipped_files`` counts unreadable files left out, with
        the data set's class names.
    """
    if confusion is not None:  # a bad path fails now, not after the evaluation
        confusion_paths(confusion)
    runner = load_runner(model)
    examples, class_names, stats = load_examples(data_config)
    if len(class_names) != runner.num_classes:
        raise UsageError(
            f"the data set has {len(class_names)} classes but {model!r} predicts "
            f"{runner.num_classes}."
        )
    result = evaluate(
        runner,
        examples,
        crops=crops,
        input_size=runner.input_shape[1],
        batch_size=batch_size,
        top_k=top_k,
        crop_fraction=data_config.crop_fraction,
    )
    result = dataclasses.replace(
        result, skipped_files=stats.skipped_count(), class_names=tuple(class_names)
    )
    if confusion is not None:
        save_confusion(confusion, result.confusion, result.class_names)
    return result


def _as_dataset(examples):
    """``examples`` as a ``tf.data.Dataset`` of (image, label); an iterable is read once, lazily."""
    if isinstance(examples, tf.data.Dataset):
        return examples
    iterator = iter(examples)
    try:
        first = next(iterator)
    except StopIteration:
        raise UsageError("`examples` is empty: nothing to evaluate.") from None
    image = np.asarray(first[0])
    # Height and width vary between images; rank and channels come from the first image, so
    # multi_crop rejects a wrong one with a ValueError when the pipeline is built.
    shape = (None, None) + image.shape[2:] if image.ndim == 3 else image.shape
    signature = (tf.TensorSpec(shape, tf.as_dtype(image.dtype)), tf.TensorSpec([], tf.int64))

    def generate():
        yield first
        yield from iterator

    return tf.data.Dataset.from_generator(generate, output_signature=signature)


def _predict(predict_fn, batch, from_logits):
    """Calls ``predict_fn`` and returns checked float64 probabilities ``[B, C]``."""
    output = predict_fn(batch)
    if isinstance(output, dict) and len(output) == 1:
        (output,) = output.values()
    probs = np.asarray(output, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != len(batch):
        raise UsageError(
            f"`predict_fn` must return probabilities [batch, classes]; for a batch of {len(batch)} "
            f"it returned shape {probs.shape}."
        )
    if from_logits:
        probs = np.exp(probs - probs.max(axis=1, keepdims=True))
        return probs / probs.sum(axis=1, keepdims=True)
    if np.any(probs < 0) or np.any(np.abs(probs.sum(axis=1) - 1) > _PROBABILITY_TOLERANCE):
        raise UsageError(
            "`predict_fn` must return probabilities (non-negative, rows summing to 1); pass "
            "from_logits=True for a model that returns logits."
        )
    return probs


def _score(probs, labels):
    """Per image: rank of the true class (0 = top; ties go to the lower class index) and
    cross-entropy of ``probs``."""
    classes = probs.shape[1]
    if np.any(labels < 0) or np.any(labels >= classes):
        raise UsageError(
            f"`examples` labels must be in [0, {classes}) for a {classes}-class predict_fn; got "
            f"{labels[(labels < 0) | (labels >= classes)][:5].tolist()}."
        )
    true = probs[np.arange(len(labels)), labels][:, None]
    higher = np.sum(probs > true, axis=1)
    tied_before = np.sum((probs == true) & (np.arange(classes) < labels[:, None]), axis=1)
    losses = -np.log(np.clip(true[:, 0], _LOSS_EPSILON, 1.0))
    return higher + tied_before, losses

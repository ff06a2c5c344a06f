"""Single- and multi-crop evaluation (Section 7 of Szegedy et al., "Going Deeper with
Convolutions"): the crops of :mod:`inception_keras.crops` (1, 10 or the paper's 144 per image)
scored together, the probabilities averaged over an image's crops.

:func:`evaluate` takes any ``predict_fn`` from a float32 ``[B, S, S, 3]`` batch of raw pixels in
[0, 255] to class probabilities, so the same code scores a Keras model, a SavedModel signature, a
TFLite interpreter or an ONNX Runtime session.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from inception_keras.confusion import confused_pairs, confusion_matrix
from inception_keras.crops import (  # noqa: F401 (re-exported: the crops' former home)
    CORNERS_AND_CENTRE,
    REFERENCE_IMAGE_SIZE,
    REFERENCE_INPUT_SIZE,
    WHOLE,
    CropBox,
    check_crop_args,
    crop_boxes,
    multi_crop,
    num_crops,
)
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

# How far predict_fn's rows may sum from 1 and still count as probabilities: loose enough for
# float16 and dequantised int8 artefacts, tight enough to catch logits passed by mistake.
_PROBABILITY_TOLERANCE = 1e-2
# Keras' epsilon: a zero probability of the true class gives a large but finite loss.
_LOSS_EPSILON = 1e-7


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
# Evaluation
# ---------------------------------------------------------------------------------------------


@renamed_arguments(central_fraction="crop_fraction", input_size="image_size")
def evaluate(
    predict_fn,
    examples,
    crops=1,
    image_size=REFERENCE_IMAGE_SIZE,
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
        image_size: side ``S`` of the model's square input.
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
    size = check_crop_args(crops, image_size, crop_fraction)
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


@renamed_arguments(central_fraction="crop_fraction", input_size="image_size")
def evaluate_model(
    model,
    examples,
    crops=1,
    batch_size=EVAL_BATCH_SIZE,
    top_k=(1, 5),
    crop_fraction=DEFAULT_CROP_FRACTION,
    image_size=None,
    from_logits=False,
):
    """:func:`evaluate` for a Keras classifier (aux heads, if any, are ignored).

    ``image_size`` defaults to the model's square input size; it is required for a model built
    with ``input_shape=(None, None, 3)``. Other arguments as for :func:`evaluate`.
    """
    model = inference_model(model)
    height, width = model.input_shape[1:3]
    if image_size is None:
        if height is None or height != width:
            raise UsageError(
                f"`image_size` is needed: the model's input is {height} x {width}, not a fixed "
                "square."
            )
        image_size = height
    elif height is not None and (height, width) != (image_size, image_size):
        raise UsageError(
            f"`image_size` {image_size!r} does not match the model's input {height} x {width}."
        )
    return evaluate(
        model.predict_on_batch,
        examples,
        crops=crops,
        image_size=image_size,
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
        image_size=runner.input_shape[1],
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

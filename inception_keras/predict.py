"""Top-k predictions for image files with any artefact: a ``.keras`` checkpoint, a SavedModel
directory, a ``.tflite`` or an ``.onnx`` file.

Images go through :func:`inception_keras.image_batches.image_files_dataset` - the evaluation
preprocessing that ``evaluate``, ``verify`` and the SavedModel's bytes signature share - and the
artefact runs in its own runtime (:func:`inception_keras.runners.load_runner`). A file that cannot
be read or decoded is reported in :attr:`Predictions.errors` and the others are still predicted.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from inception_keras import image_batches, preprocessing
from inception_keras.defaults import IMAGE_BATCH_SIZE, TOP_K
from inception_keras.errors import UsageError
from inception_keras.runners import load_runner


@dataclasses.dataclass
class Prediction:
    """The top-k classes of one image, most probable first."""

    path: str
    class_ids: list[int]
    labels: list[str]
    probabilities: list[float]

    def to_json(self):
        return {
            "path": self.path,
            "top_k": [
                {"class_id": c, "label": label, "probability": p}
                for c, label, p in zip(self.class_ids, self.labels, self.probabilities)
            ],
        }


@dataclasses.dataclass
class Predictions:
    """Result of :func:`predict`: one :class:`Prediction` per readable image in input order, and
    ``errors``, ``{path: reason}`` for the files that could not be predicted."""

    model: str
    predictions: list[Prediction]
    errors: dict[str, str]

    def to_json(self):
        return {
            "model": self.model,
            "predictions": [p.to_json() for p in self.predictions],
            "errors": [{"path": path, "error": reason} for path, reason in self.errors.items()],
        }

    def format(self):
        """Human-readable: each image, then its top-k labels and probabilities."""
        lines = []
        for prediction in self.predictions:
            lines.append(prediction.path)
            width = max(len(label) for label in prediction.labels)
            for rank, (label, probability) in enumerate(
                zip(prediction.labels, prediction.probabilities), 1
            ):
                lines.append(f"  {rank}. {label:<{width}}  {probability:7.2%}")
        return "\n".join(lines)


def predict(
    model,
    images,
    top_k=TOP_K,
    batch_size=IMAGE_BATCH_SIZE,
    image_size=None,
    crop_fraction=preprocessing.DEFAULT_CROP_FRACTION,
    max_image_bytes=preprocessing.MAX_IMAGE_BYTES,
    max_image_pixels=preprocessing.MAX_IMAGE_PIXELS,
):
    """Predicts the top-k classes of image files.

    Args:
        model: a path to any artefact (see :func:`inception_keras.runners.load_runner`) or
            a runner already loaded.
        images: image file paths (JPEG, PNG, BMP, GIF) and/or directories of them.
        top_k: classes reported per image (capped at the number of classes).
        batch_size: images per forward pass.
        image_size: the input size, only needed when the model's is not fixed.
        crop_fraction: central crop kept before resizing (the evaluation preprocessing).
        max_image_bytes, max_image_pixels: a larger file, or an image whose header gives more
            pixels, is reported in ``errors`` with the limit instead of being decoded; only
            regular files are ever read.

    Returns:
        :class:`Predictions`. Labels are the class names shipped with the artefact, or the class
        ids as text when it has none.
    """
    runner = load_runner(model) if isinstance(model, (str, os.PathLike)) else model
    size = runner.input_shape[1] or image_size
    if size is None:
        raise UsageError("the model's input size is not fixed: pass `image_size`.")
    if top_k < 1:
        raise UsageError(f"`top_k` must be at least 1, got {top_k}.")
    if batch_size < 1:
        raise UsageError(f"`batch_size` must be at least 1, got {batch_size}.")
    names = getattr(runner, "class_names", None) or [str(i) for i in range(runner.num_classes)]
    batches = image_batches.ImageFileBatches(
        images, size, batch_size, crop_fraction, max_image_bytes, max_image_pixels
    )
    found = {}
    for batch, paths in batches:
        probabilities = np.asarray(runner(batch), dtype=np.float64)
        top = np.argsort(-probabilities, axis=-1, kind="stable")[:, :top_k]
        for path, ids, row in zip(paths, top, probabilities):
            found[path] = Prediction(path, ids.tolist(), [names[i] for i in ids], row[ids].tolist())
    files, errors = batches.files, batches.errors
    # Input order, for predictions and errors alike.
    order = {path: i for i, path in enumerate(map(os.fspath, images))}
    order.update({path: len(order) + i for i, path in enumerate(files) if path not in order})
    path = getattr(runner, "path", None)
    return Predictions(
        model=os.fspath(path) if path is not None else type(runner).__name__,
        predictions=[found[path] for path in dict.fromkeys(files) if path in found],
        errors=dict(sorted(errors.items(), key=lambda item: order.get(item[0], len(order)))),
    )

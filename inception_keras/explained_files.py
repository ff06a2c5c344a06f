"""Image files explained with a ``.keras`` checkpoint: the command line's ``explain``.

The images are read as :func:`inception_keras.predict.predict` reads them and handed to
:func:`inception_keras.explain.explain`; the pictures are :mod:`inception_keras.plots.explain`'s.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from inception_keras import image_batches, preprocessing
from inception_keras.defaults import IMAGE_BATCH_SIZE
from inception_keras.errors import UsageError
from inception_keras.explain import DEFAULT_LAYER, Explanation, check_layer, explain
from inception_keras.files import MANIFEST, json_field
from inception_keras.runners import FORMAT_NAMES, artefact_format, load_runner


@dataclasses.dataclass
class ExplainedFiles:
    """Result of :func:`explain_files`.

    Attributes:
        model: the checkpoint's path.
        class_names: its class names (class ids as text when it has none).
        paths: the images explained, in input order.
        images: float32 ``[images, size, size, 3]``, each image as the model saw it (after the
            evaluation preprocessing: central crop and resize), for drawing the maps over.
        explanation: the :class:`Explanation` of those images (``None`` when none was readable).
        errors: ``{path: reason}`` for the files that could not be read.
    """

    model: str
    class_names: tuple[str, ...]
    paths: list[str]
    images: np.ndarray
    explanation: Explanation | None
    errors: dict[str, str]


def load_checkpoint(path):
    """The inference model (float32, main head only) and class names of a ``.keras`` checkpoint.

    An exported artefact (SavedModel, TFLite, ONNX) keeps no gradients, so it is refused with a
    one-line ``UsageError`` naming the checkpoint it was exported from (``manifest.json``).
    """
    path = os.fspath(path)
    kind = artefact_format(path)
    if kind != "keras":
        directory = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
        source = json_field(os.path.join(directory, MANIFEST), "source")
        use = f"use {source}" if source else "use the .keras checkpoint it was exported from"
        raise UsageError(
            f"{path} is an exported {FORMAT_NAMES[kind]} model, which has no gradients; "
            f"explaining needs its .keras checkpoint: {use}"
        )
    runner = load_runner(path)
    names = runner.class_names or tuple(str(i) for i in range(runner.num_classes))
    return runner.model, names


def class_index_of(target, class_names):
    """A class given by name or index (a name wins when names are digits) -> its index."""
    if target is None or isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        return target
    if target in class_names:
        return class_names.index(target)
    try:
        return int(target)
    except ValueError:
        raise UsageError(
            f"class {target!r} is neither an index nor one of the model's classes: "
            f"{', '.join(class_names)}."
        ) from None


def explain_files(
    model,
    images,
    layer=DEFAULT_LAYER,
    target_class=None,
    branches=False,
    batch_size=IMAGE_BATCH_SIZE,
    crop_fraction=preprocessing.DEFAULT_CROP_FRACTION,
    max_image_bytes=preprocessing.MAX_IMAGE_BYTES,
    max_image_pixels=preprocessing.MAX_IMAGE_PIXELS,
):
    """Explains image files with a ``.keras`` checkpoint.

    Images are read as :func:`inception_keras.predict.predict` reads them (the evaluation
    preprocessing); unreadable files are reported in ``errors`` and the others explained.

    Args:
        model: a ``.keras`` checkpoint path (see :func:`load_checkpoint`).
        images: image files and/or folders.
        layer: as for :func:`grad_cam`.
        target_class: ``None`` (each image's predicted class), a class name or an index.
        branches: also compute the :func:`branch_attribution`, over all the images.
        batch_size, crop_fraction, max_image_bytes, max_image_pixels: as for ``predict``.

    Returns:
        :class:`ExplainedFiles`. Every image is kept in memory for drawing: meant for tens or
        hundreds of images, not a whole data set.
    """
    network, names = load_checkpoint(model)
    size = network.input_shape[1]
    class_index = class_index_of(target_class, names)
    layer = check_layer(network, layer)  # before reading any image
    batches = image_batches.ImageFileBatches(
        images, size, batch_size, crop_fraction, max_image_bytes, max_image_pixels
    )
    pixels, paths = [], []
    for batch, batch_paths in batches:
        pixels.append(batch)
        paths += batch_paths
    errors = batches.errors
    explanation = None
    if pixels:
        explanation = explain(
            network, np.concatenate(pixels), class_index, layer, branches, batch_size
        )
    return ExplainedFiles(
        model=os.fspath(model),
        class_names=tuple(names),
        paths=paths,
        images=np.concatenate(pixels) if pixels else np.zeros((0, size, size, 3), np.float32),
        explanation=explanation,
        errors=errors,
    )

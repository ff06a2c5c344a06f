"""Image files and folders given on the command line or in Python, as eval-preprocessed batches
in input order: what ``predict``, ``explain`` and ``features`` read. Unreadable files are skipped
and reported with the reason, never fatal.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from inception_keras import preprocessing
from inception_keras.decoding import DecodeStats, refusals
from inception_keras.deprecation import renamed_arguments
from inception_keras.errors import UsageError
from inception_keras.image_files import IMAGE_EXTENSIONS, expand_image_paths

AUTOTUNE = tf.data.AUTOTUNE


@renamed_arguments(max_bytes="max_image_bytes", max_pixels="max_image_pixels")
def image_files_dataset(
    paths: Sequence[str],
    image_size: int = 224,
    batch_size: int = 32,
    crop_fraction: float = preprocessing.DEFAULT_CROP_FRACTION,
    max_image_bytes: int = preprocessing.MAX_IMAGE_BYTES,
    max_image_pixels: int = preprocessing.MAX_IMAGE_PIXELS,
) -> tuple[tf.data.Dataset, DecodeStats]:
    """Eval-preprocessed batches of image files, e.g. for ``predict``.

    Yields ``(float32 [B, S, S, 3] in [0, 255], string [B] paths)`` in input
    order; undecodable files are skipped (so the paths say which images each
    row is) and reported by the returned :class:`DecodeStats`, with the reason
    when a file is not a regular file, or over ``max_image_bytes`` or ``max_image_pixels``
    (those are never decoded, and the first two never read). Missing files
    raise ``ValueError`` up front.
    """
    paths = [str(path) for path in paths]
    if not paths:
        raise UsageError("no image files given")
    missing = [path for path in paths if not tf.io.gfile.exists(path)]
    if missing:
        raise UsageError(f"image file(s) not found: {missing}")
    stats = DecodeStats(max_image_bytes, max_image_pixels)
    refused = refusals(paths, max_image_bytes)
    stats.refuse(refused)
    ds = tf.data.Dataset.from_tensor_slices(
        tf.constant([path for path in paths if path not in refused], tf.string)
    )
    ds = ds.map(
        lambda path: (stats.decode(path, path, from_path=True), path),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    ).ignore_errors(log_warning=True)
    ds = ds.map(
        lambda image, path: (preprocessing.eval_transform(image, image_size, crop_fraction), path),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )
    return ds.batch(batch_size).prefetch(AUTOTUNE), stats


def unreadable_files(stats: DecodeStats) -> dict[str, str]:
    """``{path: reason}`` for the files an image pipeline skipped (its ``DecodeStats``)."""
    reasons = stats.reasons()
    return {
        path: reasons.get(path)
        or f"cannot be read or decoded as an image ({', '.join(IMAGE_EXTENSIONS)}); is it corrupt?"
        for path in stats.skipped_files()
    }


class ImageFileBatches:
    """Image files and folders, read as ``predict`` and ``explain`` read them: listed
    (:func:`expand_image_paths`), then :func:`image_files_dataset`'s eval-preprocessed batches.

    ``files`` lists the image files found, in input order; iterating yields ``(float32 numpy
    [B, S, S, 3], [path, ...])`` batches. ``errors`` is ``{path: reason}`` for every path that is
    not an image file and, once the batches have all been read, every file that could not be.
    """

    @renamed_arguments(max_bytes="max_image_bytes", max_pixels="max_image_pixels")
    def __init__(
        self,
        images: Sequence[str],
        image_size: int,
        batch_size: int = 32,
        crop_fraction: float = preprocessing.DEFAULT_CROP_FRACTION,
        max_image_bytes: int = preprocessing.MAX_IMAGE_BYTES,
        max_image_pixels: int = preprocessing.MAX_IMAGE_PIXELS,
    ):
        self.files, self.errors = expand_image_paths(images)
        self._options = dict(
            image_size=image_size,
            batch_size=batch_size,
            crop_fraction=crop_fraction,
            max_image_bytes=max_image_bytes,
            max_image_pixels=max_image_pixels,
        )

    def __iter__(self):
        if not self.files:
            return
        dataset, stats = image_files_dataset(self.files, **self._options)
        for batch, paths in dataset:
            yield batch.numpy(), [path.decode() for path in paths.numpy()]
        self.errors.update(unreadable_files(stats))

"""Decoding images with limits, and remembering which files could not be: :class:`DecodeStats`,
shared by every pipeline (:mod:`inception_keras.data` for training and evaluation,
:mod:`inception_keras.image_batches` for files given to predict, explain and features).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from inception_keras import preprocessing
from inception_keras.deprecation import renamed_arguments
from inception_keras.image_files import file_problem
from inception_keras.preprocessing_config import check_image_limits


def refusals(paths: Sequence[str], max_image_bytes: int) -> dict[str, str]:
    """``{path: why}`` for the files that must not be read at all (not a regular file, or over
    ``max_image_bytes`` on disk)."""
    problems = {path: file_problem(path, max_image_bytes) for path in paths}
    return {path: problem for path, problem in problems.items() if problem}


def _fingerprint(keys: tf.Tensor) -> tf.Tensor:
    return tf.strings.to_hash_bucket_fast(keys, 2**63 - 1)


class DecodeStats:
    """Tracks which files could not be read or decoded, and why when the
    size and format checks refused them.

    Decoding happens inside ``tf.data`` worker threads, where an exception
    cannot be caught; instead each element's key is recorded as *attempted*
    before decoding and as *decoded* after success, and ``ignore_errors``
    drops the failures. A key attempted but never decoded is a skipped file.
    Sets (not counters) make the result independent of the number of epochs;
    it is exact once the pipeline has been iterated.

    ``max_image_bytes`` and ``max_image_pixels`` bound every decode (see
    :func:`inception_keras.preprocessing.image_problem`).
    """

    @renamed_arguments(max_bytes="max_image_bytes", max_pixels="max_image_pixels")
    def __init__(
        self,
        max_image_bytes: int = preprocessing.MAX_IMAGE_BYTES,
        max_image_pixels: int = preprocessing.MAX_IMAGE_PIXELS,
    ):
        check_image_limits(max_image_bytes, max_image_pixels)
        self.max_image_bytes, self.max_image_pixels = max_image_bytes, max_image_pixels

        def table():
            return tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, default_value=0)

        self._attempted = table()
        self._decoded = table()
        # Keyed by a 64-bit fingerprint of the key: TF has no string -> string mutable table.
        self._reasons = tf.lookup.experimental.MutableHashTable(
            tf.int64, tf.string, default_value=""
        )

    def decode(self, key: tf.Tensor, payload: tf.Tensor, from_path: bool) -> tf.Tensor:
        """Reads (if ``from_path``) and decodes one image, recording the outcome."""
        one = tf.constant(1, tf.int64)
        with tf.control_dependencies([self._attempted.insert(key, one)]):
            encoded = tf.io.read_file(payload) if from_path else tf.identity(payload)
            problem = preprocessing.image_problem(
                encoded, self.max_image_bytes, self.max_image_pixels
            )

        def note():  # only refusals: a reason per good file would double the table's memory
            with tf.control_dependencies([self._reasons.insert(_fingerprint(key), problem)]):
                return tf.constant(True)

        noted = tf.cond(tf.equal(problem, ""), lambda: tf.constant(True), note)
        with tf.control_dependencies([noted]):
            image = preprocessing.decode_checked(encoded, problem)
        with tf.control_dependencies([image]):
            done = self._decoded.insert(key, one)
        with tf.control_dependencies([done]):
            return tf.identity(image)

    def skipped_files(self) -> list[str]:
        """Sorted keys (file paths, or tfds example ids) that failed to decode."""
        keys, _ = self._attempted.export()
        failed = tf.boolean_mask(keys, tf.equal(self._decoded.lookup(keys), 0))
        return sorted(key.decode() for key in failed.numpy())

    def skipped_count(self) -> int:
        return len(self.skipped_files())

    def refuse(self, reasons: dict[str, str]) -> None:
        """Records files skipped without being read (``{key: why}``), e.g. over the byte limit
        by their size on disk, so they are reported with the others."""
        if reasons:
            keys = tf.constant(list(reasons), tf.string)
            self._attempted.insert(keys, tf.ones([len(reasons)], tf.int64))
            self._reasons.insert(_fingerprint(keys), tf.constant(list(reasons.values()), tf.string))

    def reasons(self) -> dict[str, str]:
        """``{key: why}`` for the skipped files that the size and format checks refused; files
        the decoder itself failed on (corrupt data) have no entry."""
        skipped = self.skipped_files()
        if not skipped:
            return {}
        found = self._reasons.lookup(_fingerprint(tf.constant(skipped, tf.string))).numpy()
        return {key: reason.decode() for key, reason in zip(skipped, found) if reason}

"""Input pipelines: one ``tf.data`` path from any image source to the model.

Sources (picked from :attr:`DataConfig.dataset`, read by :mod:`inception_keras.data_sources`):

* an **image folder** - an existing directory with one sub-folder per class
  (``.jpg .jpeg .png .bmp .gif``, any case); class names are the sorted
  folder names; validation is a seeded per-class fraction or a separate
  folder with the same class folders;
* a **tensorflow-datasets name** (``tf_flowers``, ``imagenette/320px-v2``,
  ``imagenet2012`` ...) with an ``image`` and a ``ClassLabel`` ``label``
  feature, already prepared in ``data_dir`` - nothing is ever downloaded;
* the built-in **``shapes``** set (the default), a tfds builder generated
  offline into ``data_dir`` on first use (see :mod:`inception_keras.shapes`).

Every source becomes ``(key, encoded bytes or path, label)`` elements, which
go through the same steps: shuffle -> read + decode (parallel, counted) ->
skip undecodable files and images over the size limits (read from their
headers before decoding, see :class:`DataConfig`) -> optional cache ->
augment (train) or central crop (validation) -> batch -> prefetch. Batches
are ``(float32 [B, S, S, 3] in [0, 255], int32 [B])``; the transforms come
from :mod:`inception_keras.preprocessing`, shared with predict and export.

Typical use::

    data = load_data(DataConfig(dataset="tf_flowers", data_dir="~/tfds", image_size=224))
    model.fit(data.train, validation_data=data.validation, epochs=...)
    print(data.skipped_count(), "files could not be decoded:", data.skipped_files())
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os

import numpy as np
import tensorflow as tf

from inception_keras import preprocessing
from inception_keras.data_config import DataConfig  # the data's settings, also public here
from inception_keras.data_sources import Split, pick_source
from inception_keras.decoding import DecodeStats
from inception_keras.errors import UsageError
from inception_keras.image_files import (  # noqa: F401 (re-exported: the listing is data's too)
    IMAGE_EXTENSIONS,
    expand_image_paths,
    file_problem,
    is_image_file,
    is_local,
    list_image_folder,
)

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass
class Data:
    """Result of :func:`load_data`.

    ``train``/``validation`` yield ``(float32 [B, S, S, 3] in [0, 255],
    int32 [B])``; ``validation`` is ``None`` when validation is disabled.
    Example counts are ``None`` when unknown (e.g. an endless stream); they
    count files before any undecodable one is skipped.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    class_names: tuple[str, ...]
    train_examples: int | None
    validation_examples: int | None
    source: str
    decode_stats: DecodeStats

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def skipped_files(self) -> list[str]:
        """Files skipped so far because they could not be read or decoded."""
        return self.decode_stats.skipped_files()

    def skipped_count(self) -> int:
        return self.decode_stats.skipped_count()


# --------------------------------------------------------------------------
# The shared pipeline
# --------------------------------------------------------------------------
def _decoded(split: Split, stats: DecodeStats, parallel_deterministic: bool) -> tf.data.Dataset:
    """(key, payload, label) -> (uint8 image, label), undecodable files dropped."""
    if split.payload == "image":
        return split.dataset.map(lambda key, image, label: (image, label))
    from_path = split.payload == "path"
    ds = split.dataset.map(
        lambda key, payload, label: (stats.decode(key, payload, from_path), label),
        num_parallel_calls=AUTOTUNE,
        # Keeps order (and hence DecodeStats / batches) reproducible if asked.
        deterministic=parallel_deterministic,
    )
    return ds.ignore_errors(log_warning=True)


def _pipeline(
    split: Split,
    config: DataConfig,
    stats: DecodeStats,
    training: bool,
    name: str,
    shuffle: bool | None = None,
):
    seed = config.seed if config.deterministic else None
    shuffle = training and split.finite if shuffle is None else shuffle
    ds = split.dataset
    if shuffle and not config.cache:
        # Shuffle keys/paths/bytes before decoding: a cheap buffer.
        ds = ds.shuffle(config.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = _decoded(dataclasses.replace(split, dataset=ds), stats, config.deterministic)
    if config.cache and split.finite:
        if config.cache_dir:
            tf.io.gfile.makedirs(config.cache_dir)
        ds = ds.cache(os.path.join(config.cache_dir, name) if config.cache_dir else "")
        if shuffle:  # after the cache, or every epoch would replay one order
            ds = ds.shuffle(config.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    size = config.image_size
    if training and config.augment is not None:
        augment = config.augment
        # One stateless seed pair per element from a seeded random stream: the
        # same in every run when deterministic, different in every epoch.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda example, pair: (
                preprocessing.train_transform(example[0], pair, size, augment),
                example[1],
            ),
            num_parallel_calls=AUTOTUNE,
        )
    else:
        crop = config.crop_fraction
        ds = ds.map(
            lambda image, label: (preprocessing.eval_transform(image, size, crop), label),
            num_parallel_calls=AUTOTUNE,
        )
    ds = ds.batch(config.batch_size, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = config.deterministic
    # fit keeps an evaluation iterator idle between epochs, and destroying one whose autotuning
    # thread was in its (up to 60 s) wait blocked fit that long; evaluation gains little from
    # autotuning. See docs/performance.md, "Time lost between training and validation".
    options.autotune.enabled = training
    return ds.with_options(options)


def _stats(config: DataConfig, *splits: Split | None) -> DecodeStats:
    stats = DecodeStats(config.max_image_bytes, config.max_image_pixels)
    for split in splits:
        if split is not None:
            stats.refuse(split.refused)
    return stats


def load_data(config: DataConfig = DataConfig()) -> Data:
    """Builds the training and validation pipelines described by ``config``.

    Raises ``ValueError`` - before any training - for a missing or empty
    folder, fewer than two classes, an unknown or unprepared tfds name, or
    an empty split.
    """
    config, train, validation, class_names, source = pick_source(config)
    stats = _stats(config, train, validation)
    return Data(
        train=_pipeline(train, config, stats, training=True, name="train"),
        validation=_pipeline(validation, config, stats, training=False, name="validation")
        if validation
        else None,
        class_names=class_names,
        train_examples=train.num_examples,
        validation_examples=validation.num_examples if validation else None,
        source=source,
        decode_stats=stats,
    )


def batches_per_epoch(
    dataset: tf.data.Dataset, examples: int | None, batch_size: int
) -> int | None:
    """The batches in one pass of a batched ``dataset``: its cardinality when known (0: empty), else
    ``examples / batch_size`` rounded up (a set that skips unreadable files has no known length,
    and may run a batch short), else ``None`` (an endless stream, or nothing to go by)."""
    cardinality = int(dataset.cardinality())
    if cardinality >= 0:
        return cardinality
    if cardinality == tf.data.UNKNOWN_CARDINALITY and examples:
        return math.ceil(examples / batch_size)
    return None


@dataclasses.dataclass
class Views:
    """Result of :func:`load_views`: every training image in a fixed order, seen ``len(train)``
    ways, and the validation images, each as batches of ``(float32 [B, S, S, 3], int32 [B])``.

    ``train[0]`` is the evaluation crop (central crop); ``train[v]`` for ``v >= 1`` the training
    augmentation with its own seed. ``fingerprint`` is a digest of what the images are: the
    splits' example keys, labels and encoded bytes (file contents for folders), so a changed,
    added or removed image changes it.
    """

    train: list[tf.data.Dataset]
    validation: tf.data.Dataset | None
    class_names: tuple[str, ...]
    fingerprint: str
    decode_stats: DecodeStats


def load_views(config: DataConfig, views: int = 1) -> Views:
    """The images of a source in a fixed order, for computing their features once
    (:mod:`inception_keras.feature_cache`): the same sources, decoding, limits and transforms as
    :func:`load_data`, without shuffling. Augmented views need ``config.augment``."""
    if config.shapes_stream:
        raise UsageError("an endless shapes_stream has no fixed set of images to cache.")
    if views > 1 and config.augment is None:
        raise UsageError(
            f"{views} views of each image need augmentation: the views after the first are "
            "augmented crops; turn augmentation on or use one view."
        )
    config = dataclasses.replace(config, deterministic=True)
    config, train, validation, class_names, _ = pick_source(config)
    stats = _stats(config, train, validation)
    central = dataclasses.replace(config, augment=None)
    pipelines = [_pipeline(train, central, stats, training=False, name="train")]
    for view in range(1, views):
        # One seed per view: view v is the same crops in every run, and differs from view w.
        seeded = dataclasses.replace(config, seed=config.seed * 1000 + view)
        pipelines.append(
            _pipeline(train, seeded, stats, training=True, name="train", shuffle=False)
        )
    return Views(
        train=pipelines,
        validation=_pipeline(validation, central, stats, training=False, name="validation")
        if validation
        else None,
        class_names=class_names,
        fingerprint=_fingerprint_splits(train, validation),
        decode_stats=stats,
    )


def _fingerprint_splits(*splits: Split | None) -> str:
    """SHA-256 of the splits' ``(key, label, image bytes)`` in order; a folder's images are
    hashed from their files. Reading every file once costs far less than one pass of a network."""
    digest = hashlib.sha256()
    for split in splits:
        digest.update(b"split" if split is not None else b"none")
        if split is None:
            continue
        for key, payload, label in split.dataset.as_numpy_iterator():
            digest.update(key + b"\0" + str(int(label)).encode() + b"\0")
            if split.payload == "path":
                try:
                    with tf.io.gfile.GFile(payload.decode(), "rb") as f:
                        digest.update(hashlib.sha256(f.read()).digest())
                except (OSError, tf.errors.OpError) as error:  # skipped when decoding; still keys
                    digest.update(repr(error).encode())
            else:
                digest.update(hashlib.sha256(np.asarray(payload).tobytes()).digest())
    return digest.hexdigest()


def load_examples(
    config: DataConfig = DataConfig(),
) -> tuple[tf.data.Dataset, tuple[str, ...], DecodeStats]:
    """The validation part of a source as decoded ``(uint8 [H, W, 3], int32 label)`` pairs.

    For evaluation with several crops per image (:mod:`inception_keras.evaluation`), which needs
    the whole image rather than one preprocessed crop. The split is chosen exactly as for
    :func:`load_data` (``validation_split``, ``validation_dir`` or ``validation_fraction``), so
    ``validation_split="test"`` evaluates a tfds test split. Unreadable files are skipped and
    counted in the returned :class:`DecodeStats`.
    """
    config, _, validation, class_names, _ = pick_source(
        dataclasses.replace(config, shapes_stream=False)
    )
    if validation is None:
        raise UsageError(
            f"dataset {config.dataset!r} has no validation split to evaluate: "
            "set validation_split, validation_dir or validation_fraction."
        )
    stats = _stats(config, validation)
    return _decoded(validation, stats, parallel_deterministic=True), class_names, stats


# Files given to predict, explain and features: their former home.
from inception_keras.image_batches import (  # noqa: E402, F401
    ImageFileBatches,
    image_files_dataset,
    unreadable_files,
)

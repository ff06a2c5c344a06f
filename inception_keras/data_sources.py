"""Where images come from: an image folder, a tensorflow-datasets set or the built-in ``shapes``.

Each source becomes :class:`Split`s of ``(key, payload, label)`` elements, which
:mod:`inception_keras.data` turns into batches. :func:`pick_source` picks one from
:attr:`DataConfig.dataset`; nothing here decodes an image.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from inception_keras import logs, shapes
from inception_keras.data_config import DataConfig, is_existing_image_folder
from inception_keras.decoding import refusals
from inception_keras.errors import UsageError
from inception_keras.image_files import list_image_folder

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass
class Split:
    dataset: tf.data.Dataset  # (key string, payload, label int32)
    num_examples: int | None
    payload: str  # "path": file to read, "bytes": encoded image, "image": decoded uint8
    finite: bool = True
    refused: dict[str, str] = dataclasses.field(default_factory=dict)  # not read: {path: why}


def _check_class_count(class_names: Sequence[str], where: str) -> None:
    if len(class_names) < 2:
        raise UsageError(
            f"{where} has {len(class_names)} class(es) {list(class_names)}; classification "
            "needs at least 2"
        )


def split_fraction(files: dict[str, list[str]], fraction: float, seed: int):
    """Per-class seeded hold-out. Each class uses its own stream (seed + name
    hash), so adding a class does not reshuffle the others."""
    train, validation = {}, {}
    for name, paths in files.items():
        order = np.random.default_rng([seed, zlib.crc32(name.encode())]).permutation(len(paths))
        count = min(len(paths) - 1, max(1, round(fraction * len(paths)))) if fraction > 0 else 0
        validation[name] = sorted(paths[i] for i in order[:count])
        train[name] = sorted(paths[i] for i in order[count:])
    return train, validation


def _files_split(
    files: dict[str, list[str]], class_names: Sequence[str], max_image_bytes: int
) -> Split:
    """Files too large to read are left out of the dataset and reported as refused."""
    index = {name: i for i, name in enumerate(class_names)}
    everything = [path for name in files for path in files[name]]
    refused = refusals(everything, max_image_bytes)
    kept = [(path, index[name]) for name in files for path in files[name] if path not in refused]
    paths = tf.constant([path for path, _ in kept], tf.string)
    labels = tf.constant([label for _, label in kept], tf.int32)
    ds = tf.data.Dataset.from_tensor_slices((paths, paths, labels))
    return Split(ds, len(everything), "path", refused=refused)


def _folder_source(config: DataConfig):
    files = list_image_folder(config.dataset)
    class_names = tuple(files)
    _check_class_count(class_names, f"image folder {config.dataset!r}")
    if config.validation_dir:
        validation = list_image_folder(config.validation_dir)
        unknown = sorted(set(validation) - set(class_names))
        if unknown:
            raise UsageError(
                f"validation folder {config.validation_dir!r} has classes {unknown} "
                f"that are not in the training folder {config.dataset!r}"
            )
        train = files
    else:
        train, validation = split_fraction(files, config.validation_fraction, config.seed)
    limit = config.max_image_bytes
    validation_split = (
        _files_split(validation, class_names, limit) if any(validation.values()) else None
    )
    return _files_split(train, class_names, limit), validation_split, class_names


def _tfds_builder(config: DataConfig) -> tfds.core.DatasetBuilder:
    name = config.dataset
    try:
        builder = tfds.builder(name, data_dir=config.data_dir)
    except (tfds.core.registered.DatasetNotFoundError, ValueError) as error:
        raise UsageError(
            f"unknown dataset {name!r}: not an existing image folder and not a tensorflow-datasets "
            f"name ({str(error).splitlines()[0]})"
        ) from None
    if isinstance(builder, shapes.Shapes) and not shapes.is_prepared(builder):
        builder = shapes.prepare(name, config.data_dir)  # generated locally, no download
    features = builder.info.features
    image, label = (
        features[key] if key in features.keys() else None
        for key in (config.image_key, config.label_key)
    )
    if not isinstance(image, tfds.features.Image) or not isinstance(
        label, tfds.features.ClassLabel
    ):
        raise UsageError(
            f"tfds dataset {name!r} is not an image classification set: it needs an Image feature "
            f"{config.image_key!r} and a ClassLabel feature {config.label_key!r}, got "
            f"{list(features.keys())}"
        )
    return builder


def _tfds_split_names(
    builder: tfds.core.DatasetBuilder, config: DataConfig
) -> tuple[str, str | None]:
    if config.validation_split:
        return config.train_split, config.validation_split
    if "validation" in builder.info.splits and config.train_split != "validation":
        return config.train_split, "validation"
    if config.validation_fraction == 0:
        return config.train_split, None
    if "[" in config.train_split:
        raise UsageError(
            f"train_split {config.train_split!r} is already sliced: also set validation_split "
            f"(e.g. 'train[90%:]') or validation_fraction=0"
        )
    cut = f"{100 * (1 - config.validation_fraction):g}%"
    return f"{config.train_split}[:{cut}]", f"{config.train_split}[{cut}:]"


def _tfds_split(builder, split: str, config: DataConfig, training: bool) -> Split:
    name = builder.info.full_name
    read_config = tfds.ReadConfig(
        add_tfds_id=True,  # a stable per-example key for DecodeStats
        shuffle_seed=config.seed if config.deterministic else None,
        try_autocache=False,  # caching is DataConfig.cache's decision
    )
    try:
        # tfds numbers the examples for ``add_tfds_id`` with the deprecated
        # tf.data.experimental.Counter, and TensorFlow warns about it (twice a
        # split): tfds's call, nothing a user can change.
        with logs.ignoring_log_records(
            "tensorflow", r"CounterV2 \(from tensorflow\.python\.data\.experimental\.ops\.counter\)"
        ):
            ds = builder.as_dataset(
                split=split,
                # Ordered sets (like shapes) refuse file shuffling; the shuffle
                # buffer still mixes their examples.
                shuffle_files=training and not builder.info.disable_shuffling,
                # Keep the encoded bytes: decoding happens in our pipeline so every
                # source shares decode_image and the skip-and-count logic.
                decoders={config.image_key: tfds.decode.SkipDecoding()},
                read_config=read_config,
            )
    except (AssertionError, KeyError, ValueError) as error:
        # tfds reports "not prepared" as AssertionError or KeyError; checked
        # here rather than up front because tfds.testing.mock_data serves
        # data without the builder being prepared.
        if not shapes.is_prepared(builder):
            where = config.data_dir or "the default tfds data_dir (~/tensorflow_datasets)"
            raise UsageError(
                f"tfds dataset {name!r} is not prepared in {where}, and nothing is downloaded "
                f"here. Prepare it first, e.g. `tfds build {config.dataset} --data_dir DIR` "
                "(manual-download sets such as imagenet2012 also need --manual_dir), then pass DIR "
                "as data_dir / --data-dir."
            ) from None
        raise UsageError(f"tfds dataset {name!r}: cannot read split {split!r}: {error}") from None
    try:
        count = builder.info.splits[split].num_examples
    except Exception:  # split info unavailable (e.g. under tfds.testing.mock_data)
        count = None
    if count == 0:
        raise UsageError(f"tfds dataset {name!r}: split {split!r} is empty")
    ds = ds.map(
        lambda ex: (ex["tfds_id"], ex[config.image_key], tf.cast(ex[config.label_key], tf.int32)),
        num_parallel_calls=AUTOTUNE,
    )
    return Split(ds, count, "bytes")


def _shapes_stream_split(builder, config: DataConfig) -> Split:
    size = builder.builder_config.image_size
    ds = shapes.stream(image_size=size, seed=config.seed).map(
        lambda image, label: (tf.constant(""), image, tf.cast(label, tf.int32))
    )
    return Split(ds, None, "image", finite=False)


def _tfds_source(config: DataConfig):
    builder = _tfds_builder(config)
    class_names = tuple(builder.info.features[config.label_key].names)
    _check_class_count(class_names, f"tfds dataset {config.dataset!r}")
    train_name, validation_name = _tfds_split_names(builder, config)
    if config.shapes_stream:
        if not isinstance(builder, shapes.Shapes):
            raise UsageError(f"shapes_stream needs the 'shapes' dataset, not {config.dataset!r}")
        train = _shapes_stream_split(builder, config)
    else:
        train = _tfds_split(builder, train_name, config, training=True)
    validation = (
        _tfds_split(builder, validation_name, config, training=False) if validation_name else None
    )
    return train, validation, class_names


def _is_folder(dataset: str) -> bool:
    """Existing image folders are folders; so is anything path-like that is not
    a tfds name (so a mistyped path gets a 'folder does not exist' error)."""
    if is_existing_image_folder(dataset):
        return True
    if dataset.startswith(("/", ".", "~")) or "://" in dataset:
        return True
    first = dataset.split("/")[0].split(":")[0]
    return "/" in dataset and first not in tfds.list_builders(with_community_datasets=False)


def pick_source(config: DataConfig):
    """Picks the source: ``(config, train Split, validation Split | None, class names, label)``;
    a folder path comes back with ``~`` expanded in ``config.dataset``."""
    if _is_folder(config.dataset):
        config = dataclasses.replace(config, dataset=os.path.expanduser(config.dataset))
        train, validation, class_names = _folder_source(config)
        return config, train, validation, class_names, f"image folder {config.dataset}"
    if config.validation_dir:
        raise UsageError("validation_dir only applies to image folder datasets")
    train, validation, class_names = _tfds_source(config)
    return config, train, validation, class_names, f"tfds {config.dataset}"

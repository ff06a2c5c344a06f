"""Where a run's data comes from and how it is fed: :class:`DataConfig`, without TensorFlow.

:mod:`inception_keras.data` builds the pipelines it describes (and re-exports it); it lives apart so
that the command line's ``--help`` and a configuration built in Python read it without importing
TensorFlow.
"""

import dataclasses
import os

from inception_keras.errors import UsageError
from inception_keras.preprocessing_config import (
    DEFAULT_CROP_FRACTION,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    AugmentConfig,
    check_image_limits,
)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is fed.

    Attributes:
        dataset: tfds name (optionally ``name/config:version``) or the path of
            an image folder. Default: the built-in ``shapes`` set.
        data_dir: tfds data directory (``None``: the tfds default,
            ``~/tensorflow_datasets``).
        train_split: tfds split for training; slicing such as
            ``"train[:90%]"`` works.
        validation_split: tfds split for validation. ``None``: the dataset's
            ``validation`` split if it has one, else the last
            ``validation_fraction`` of ``train_split``.
        validation_fraction: share held out for validation when there is no
            validation split/folder (folders: per class, shuffled with
            ``seed``, stable across runs). ``0`` disables validation.
        validation_dir: image folder with the same class folders, used for
            validation instead of a fraction (folder source only).
        image_key, label_key: tfds feature names.
        image_size: side of the square model input.
        batch_size: examples per batch (last batch may be smaller).
        crop_fraction: side fraction kept by the evaluation central crop.
        augment: training augmentation, an ``AugmentConfig`` (``True``: the
            paper's, the default); ``None`` or ``False`` trains on eval crops.
        seed: seeds the validation split, and - with ``deterministic`` - the
            shuffles and augmentations.
        deterministic: reproducible element order and augmentation (two
            runs give identical batches); otherwise order may vary for speed
            and random seeds are fresh each run.
        shuffle_buffer: shuffle buffer size (elements: encoded files, or
            decoded images when ``cache`` is on).
        cache: cache decoded images (in memory, or in files under
            ``cache_dir``); otherwise every epoch decodes again.
        cache_dir: cache to files in this folder instead of memory (for
            sets larger than RAM); implies ``cache``.
        shapes_stream: train on an endless stream of freshly generated
            ``shapes`` images instead of the fixed train split (``shapes``
            only; ``fit`` then needs ``steps_per_epoch``).
        max_image_bytes, max_image_pixels: larger files, or images whose
            header gives more pixels, are skipped (and counted) instead of
            decoded; see :func:`inception_keras.preprocessing.image_problem`.
    """

    dataset: str = "shapes"
    data_dir: str | None = None
    train_split: str = "train"
    validation_split: str | None = None
    validation_fraction: float = 0.1
    validation_dir: str | None = None
    image_key: str = "image"
    label_key: str = "label"
    image_size: int = 224
    batch_size: int = 32
    crop_fraction: float = DEFAULT_CROP_FRACTION
    augment: AugmentConfig | None = AugmentConfig()
    seed: int = 0
    deterministic: bool = False
    shuffle_buffer: int = 10_000
    cache: bool = False
    cache_dir: str | None = None
    shapes_stream: bool = False
    max_image_bytes: int = MAX_IMAGE_BYTES
    max_image_pixels: int = MAX_IMAGE_PIXELS

    def __post_init__(self):
        if isinstance(self.cache, str):  # the former spelling of cache_dir
            object.__setattr__(self, "cache_dir", self.cache)
            object.__setattr__(self, "cache", True)
        if self.cache_dir:
            object.__setattr__(self, "cache", True)
        if isinstance(self.augment, bool):
            augment = AugmentConfig() if self.augment else None
            object.__setattr__(self, "augment", augment)
        if not 0 <= self.validation_fraction < 1:
            raise UsageError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction}"
            )
        if self.image_size < 1 or self.batch_size < 1 or self.shuffle_buffer < 1:
            raise UsageError("image_size, batch_size and shuffle_buffer must be positive")
        check_image_limits(self.max_image_bytes, self.max_image_pixels)

    def with_absolute_folders(self):
        """This config with its local folders as absolute paths (``~`` expanded): a run's
        ``data_config.json`` holds them so, and export and verify, which read it back, find the
        same data from any working directory. Remote paths (``gs://...``) and unset ones are kept
        as they are, and ``dataset`` is made a path only when it names an existing image folder
        (:func:`is_existing_image_folder`), as the loader takes it."""

        def absolute(path):
            return path if not path or "://" in path else os.path.abspath(os.path.expanduser(path))

        folder = is_existing_image_folder(self.dataset)
        return dataclasses.replace(
            self,
            dataset=absolute(self.dataset) if folder else self.dataset,
            data_dir=absolute(self.data_dir),
            validation_dir=absolute(self.validation_dir),
            cache_dir=absolute(self.cache_dir),
        )


# What tensorflow-datasets leaves in each version of a set it prepares (NAME[/CONFIG]/VERSION/),
# and the prefix of the folder it prepares into before renaming it to VERSION.
TFDS_INFO_FILE = "dataset_info.json"
TFDS_INCOMPLETE_PREFIX = "incomplete."


def is_existing_image_folder(dataset):
    """Whether ``dataset`` names an existing local folder that is an image folder.

    A folder at a tfds name's relative path in which tensorflow-datasets has prepared that set
    (``--data-dir .`` leaves ``shapes/64px/1.0.0/`` for ``shapes/64px`` and
    ``shapes/128px/1.0.0/`` for ``shapes``) is the set, not an image folder: it is recognised
    by a version folder holding ``dataset_info.json``, or one being prepared.
    """
    path = os.path.expanduser(dataset)
    if not os.path.isdir(path):
        return False
    if dataset.startswith(("/", ".", "~")):
        return True  # written as a path: a path is meant
    try:
        # NAME/CONFIG/VERSION: a name with its config is one level above its versions.
        return not _holds_a_tfds_version(path, depth=1 if "/" in dataset else 2)
    except OSError:
        return True  # unreadable: the image-folder loader says why, in one line


def _holds_a_tfds_version(path, depth):
    with os.scandir(path) as entries:
        folders = [entry for entry in entries if entry.is_dir()]
    for entry in folders:
        if entry.name.startswith(TFDS_INCOMPLETE_PREFIX) or os.path.isfile(
            os.path.join(entry.path, TFDS_INFO_FILE)
        ):
            return True
    return depth > 1 and any(_holds_a_tfds_version(entry.path, depth - 1) for entry in folders)

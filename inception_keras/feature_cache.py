"""A frozen backbone's features of a run's images, computed once and kept in the run's folder.

When every layer up to the classifier is frozen, each epoch of training would run the same
backbone on the same crops again. :func:`cached_features` runs it once per image and view (the
central crop, plus augmented crops for ``views > 1``) and keeps the outputs in
``RUN_DIR/feature_cache/KEY.npz``. ``KEY`` digests everything the features depend on:

- the backbone's weights (their values, so a changed weights file or a different ``freeze``
  point gives another key);
- the images (:attr:`inception_keras.data.Views.fingerprint`: keys, labels and bytes);
- the preprocessing (input size, crop fraction, augmentation settings, views, seed, image limits)
  and the layer read;
- the dtype the backbone computes in (a mixed-precision run's bfloat16 features differ).

A run that finds its key reuses the file - a resumed run, or the same run again with
``overwrite`` - and any change computes the features anew; only the newest file is kept. Written
by hand because Keras and tf.data cache datasets, not a model's outputs keyed by its weights.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import sys
import time

import numpy as np
import tensorflow as tf

from inception_keras import data
from inception_keras.errors import UsageError
from inception_keras.files import atomic_output

CACHE_DIR = "feature_cache"


@dataclasses.dataclass
class CachedFeatures:
    """What :func:`cached_features` returns.

    Attributes:
        train: float32 ``[views, images, *feature]``; view 0 is the central crop.
        train_labels: int32 ``[images]``.
        validation: float32 ``[images, *feature]`` of the central crops, or None.
        validation_labels: int32 ``[images]``, or None.
        class_names: the data's class names.
        skipped_files: the files that could not be read (no features, no row).
        path: the cache file.
        reused: whether the file was there already (nothing was computed).
    """

    train: np.ndarray
    train_labels: np.ndarray
    validation: np.ndarray | None
    validation_labels: np.ndarray | None
    class_names: tuple[str, ...]
    skipped_files: tuple[str, ...]
    path: str
    reused: bool


def weights_digest(model):
    """SHA-256 of a model's weights: their names, shapes and values, in order."""
    digest = hashlib.sha256()
    for variable in model.weights:
        value = np.ascontiguousarray(variable.numpy())
        digest.update(f"{variable.path}:{value.dtype}:{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def cache_key(backbone, data_config, views, fingerprint):
    """The digest naming a cache file, and the description (JSON text) it is made of."""
    preprocessing = {
        field: getattr(data_config, field)
        for field in ("image_size", "crop_fraction", "max_image_bytes", "max_image_pixels", "seed")
    }
    augment = data_config.augment
    preprocessing["augment"] = dataclasses.asdict(augment) if augment and views > 1 else None
    described = {
        "weights": weights_digest(backbone),
        "layer": backbone.layers[-1].name,
        # Features computed in bfloat16 (a mixed-precision run) differ from float32 ones.
        "compute_dtype": backbone.dtype_policy.compute_dtype,
        "output_shape": list(backbone.output_shape[1:]),
        "images": fingerprint,
        "preprocessing": preprocessing,
        "views": views,
    }
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24], text


def _run(backbone, dataset, verbose):
    features, labels = [], []
    counting = verbose and sys.stdout.isatty()  # a count in place on a terminal; a log gets one
    # A traced call: quicker than calling the model eagerly, the same numbers. Not Keras'
    # predict_on_batch, which under a MirroredStrategy returns a batch's rows once per replica
    # (Keras 3.15: 8 rows for 4 images on two replicas).
    forward = tf.function(lambda images: backbone(images, training=False), reduce_retracing=True)
    for images, batch_labels in dataset:
        features.append(np.asarray(forward(images), np.float32))
        labels.append(batch_labels.numpy().astype(np.int32))
        if counting:
            print(f"\r  {sum(map(len, labels))} images", end="", flush=True)
    if verbose:
        start = "\r" if counting else ""
        print(f"{start}  {sum(map(len, labels))} images")
    if not features:
        return np.zeros((0, *backbone.output_shape[1:]), np.float32), np.zeros((0,), np.int32)
    return np.concatenate(features), np.concatenate(labels)


def cached_features(backbone, data_config, output_dir, views=1, verbose=True):
    """The outputs of ``backbone`` (a frozen model from images to features) on every training
    image (``views`` ways) and validation image of ``data_config``, from the cache in
    ``output_dir`` when its key matches, else computed and written there atomically.

    ``verbose``: print what is being computed, with a count of images.
    """
    images = data.load_views(data_config, views)
    key, described = cache_key(backbone, data_config, views, images.fingerprint)
    directory = os.path.join(output_dir, CACHE_DIR)
    path = os.path.join(directory, f"{key}.npz")
    if os.path.exists(path):
        with np.load(path) as stored:
            arrays = {name: stored[name] for name in stored.files}
        return _result(arrays, images.class_names, path, reused=True)

    start = time.perf_counter()
    arrays = {}
    for view, dataset in enumerate(images.train):
        if verbose:
            kind = "central crop" if view == 0 else "augmented crop"
            print(f"Computing the frozen backbone's features, view {view + 1}/{views} ({kind}):")
        features, labels = _run(backbone, dataset, verbose)
        if view and not np.array_equal(labels, arrays["train_labels"]):
            raise UsageError(f"the images of view {view + 1} are not those of view 1.")
        arrays.setdefault("train_labels", labels)
        arrays.setdefault("train", []).append(features)
    if not len(arrays["train_labels"]):
        raise UsageError(f"dataset {data_config.dataset!r}: no training image could be read.")
    arrays["train"] = np.stack(arrays["train"])
    if images.validation is not None:
        if verbose:
            print("Computing the frozen backbone's features of the validation images:")
        arrays["validation"], arrays["validation_labels"] = _run(
            backbone, images.validation, verbose
        )
    arrays["described"] = np.array(described)
    arrays["skipped_files"] = np.array(images.decode_stats.skipped_files(), dtype=str)
    with atomic_output(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    for stale in glob.glob(os.path.join(glob.escape(directory), "*.npz")):
        if stale != path:
            os.remove(stale)
    if verbose:
        count = len(arrays["train_labels"])
        print(
            f"Cached {count} x {views} training views in {time.perf_counter() - start:.1f} s: "
            f"{path}"
        )
    return _result(arrays, images.class_names, path, reused=False)


def _result(arrays, class_names, path, reused):
    skipped = arrays.get("skipped_files")
    return CachedFeatures(
        train=arrays["train"],
        train_labels=arrays["train_labels"],
        validation=arrays.get("validation"),
        validation_labels=arrays.get("validation_labels"),
        class_names=tuple(class_names),
        skipped_files=tuple(str(name) for name in skipped) if skipped is not None else (),
        path=path,
        reused=reused,
    )

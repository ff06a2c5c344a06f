"""Backbone features of image files, written to disk for scikit-learn or a nearest-neighbour index.

:func:`extract_features` runs a GoogLeNet's main path up to one layer - by default ``pool5``, the
global average pool the classifier reads (1024 values per image) - over image files, and writes one
row per image into a ``.npy`` file with the file names in a ``.csv`` beside it, in the same order.
Images are read as ``predict`` reads them (:class:`inception_keras.image_batches.ImageFileBatches`:
the evaluation preprocessing, central crop at the model's input size), so the features are those the
classifier computes. The batches stream through ``tf.data`` into a memory-mapped ``.npy``
(``numpy.lib.format.open_memmap``) whose shape is fixed before the first image is read, so memory
holds one batch whatever the number of images; both files appear only when complete
(:func:`inception_keras.files.atomic_output`).
"""

from __future__ import annotations

import csv
import dataclasses
import os

import keras
import numpy as np

from inception_keras import defaults, image_batches, preprocessing
from inception_keras.architecture import FEATURES_LAYER, TABLE_1
from inception_keras.errors import UsageError
from inception_keras.files import atomic_output
from inception_keras.image_files import expand_image_paths
from inception_keras.model import feature_model, inference_model

#: The layer read when none is named: the global average pool before dropout and ``fc``.
DEFAULT_LAYER = FEATURES_LAYER
#: How a layer with a spatial output becomes one vector per image; ``None`` keeps the whole map.
POOLINGS = defaults.POOLINGS
DEFAULT_BATCH_SIZE = defaults.IMAGE_BATCH_SIZE
CSV_COLUMNS = ("path", "class")
# Named when a layer name is wrong: Table 1's rows, then the pool the classifier reads.
_PAPER_LAYERS = tuple(row.name for row in TABLE_1) + (DEFAULT_LAYER,)


@dataclasses.dataclass(frozen=True)
class Features:
    """What :func:`extract_features` wrote.

    Attributes:
        features: the ``.npy`` file: float32 ``[images, *shape]``, one row per readable image.
        index: the ``.csv`` file beside it: a header, then ``path,class`` per row of
            ``features`` in the same order (``class``: the image's class folder, see
            :func:`extract_features`; empty when it has none).
        model: the model's name or path.
        layer: the layer read.
        pooling: ``"avg"``, ``"max"`` or ``None`` (the layer's output as it is).
        shape: the shape of ``features``.
        errors: ``{path: reason}`` for the inputs that gave no row (unreadable files, folders
            without images), in input order.
    """

    features: str
    index: str
    model: str
    layer: str
    pooling: str | None
    shape: tuple[int, ...]
    errors: dict[str, str]

    def format(self):
        """One line: what was written where."""
        count, *feature = self.shape
        pooled = f", {self.pooling} pooled" if self.pooling else ""
        return (
            f"Wrote {count} image(s) x {'x'.join(map(str, feature))} features (layer "
            f"{self.layer}{pooled}) to {self.features}; their files, in the same order, to "
            f"{self.index}."
        )


def index_path(output):
    """The CSV of file names beside a features file (``feats.npy`` -> ``feats.csv``)."""
    return os.path.splitext(os.fspath(output))[0] + ".csv"


def extract_features(
    model,
    images,
    output,
    layer=None,
    pooling="avg",
    batch_size=DEFAULT_BATCH_SIZE,
    image_size=None,
    overwrite=False,
    crop_fraction=preprocessing.DEFAULT_CROP_FRACTION,
    max_image_bytes=preprocessing.MAX_IMAGE_BYTES,
    max_image_pixels=preprocessing.MAX_IMAGE_PIXELS,
    on_batch=None,
):
    """Writes one layer's output for each image file into ``output`` (``.npy``) and the file
    names into the ``.csv`` beside it.

    Args:
        model: a ``.keras`` checkpoint path or a Keras model: a GoogLeNet of any variant, with
            or without aux heads (only the main path is run), with or without its top.
        images: image files (JPEG, PNG, BMP, GIF) and/or folders of them, at any depth.
        output: the ``.npy`` file to write; the ``.csv`` gets the same name
            (:func:`index_path`).
        layer: a layer by its paper name (``inception_4e``, ``inception_5b``, ``conv2``, a
            branch such as ``inception_4e_5x5`` ...; a convolution's output is taken after its
            ReLU, in every variant) or any other layer's name; ``None``: ``pool5`` (1024 values
            per image), or the model's last layer when it has no ``pool5``.
        pooling: for a layer with a spatial output, ``"avg"`` (mean over height and width, as
            ``pool5`` does), ``"max"``, or ``None`` to keep the whole ``[H, W, C]`` map per
            image (on disk; memory still holds one batch). A layer with a vector output is
            written as it is.
        batch_size: images per forward pass, and all that is held in memory at once.
        image_size: the input size, only needed when the model's is not fixed.
        overwrite: replace an existing ``output`` or ``.csv``; otherwise they are refused.
        crop_fraction, max_image_bytes, max_image_pixels: as for
            :func:`inception_keras.predict.predict`.
        on_batch: called as ``on_batch(rows_written, total_files)`` after each batch is written
            (e.g. to show progress).

    Returns:
        :class:`Features`. Rows follow the listing order (files as given; each folder's files
        sorted); a file is listed once even when named twice. A file that cannot be read or
        decoded gets no row - the ``.npy`` holds only real features, ready for a classifier -
        and is reported in ``errors``. An image under a folder given in ``images`` has that
        folder's sub-folder as its ``class`` in the ``.csv`` (``photos/cat/1.jpg`` given as
        ``photos``: ``cat``), the layout ``train --dataset FOLDER`` reads.
    """
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    output = os.fspath(output)
    index = index_path(output)
    if not output.endswith(".npy"):
        raise UsageError(f"the features file must end in .npy, got {output!r}.")
    if not overwrite:
        existing = [path for path in (output, index) if os.path.exists(path)]
        if existing:
            raise UsageError(
                f"{' and '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
                "choose another output or pass --overwrite (overwrite=True)."
            )
    if pooling not in POOLINGS:
        raise UsageError(f"`pooling` must be one of {POOLINGS}, got {pooling!r}.")
    if batch_size < 1:
        raise UsageError(f"`batch_size` must be at least 1, got {batch_size}.")
    network, name = _load(model)
    size = network.input_shape[1] or image_size
    if size is None:
        raise UsageError("the model's input size is not fixed: pass `image_size`.")
    layer = _check_layer(network, layer)
    extractor = _extractor(network, _unit_output(network, layer), pooling)
    feature_shape = tuple(extractor.compute_output_shape((None, size, size, 3))[1:])

    files, classes, errors, rank = _list_images(images)
    if not files:
        reasons = "; ".join(f"{path}: {why}" for path, why in errors.items())
        raise UsageError(f"no images found ({reasons or 'no paths given'}).")
    batches = image_batches.ImageFileBatches(
        files,
        image_size=size,
        batch_size=batch_size,
        crop_fraction=crop_fraction,
        max_image_bytes=max_image_bytes,
        max_image_pixels=max_image_pixels,
    )
    with atomic_output(output, suffix=".npy") as npy, atomic_output(index, suffix=".csv") as tmp:
        rows = _write(extractor, batches, classes, npy, tmp, (len(files), *feature_shape), on_batch)
        if rows == 0:
            reasons = "; ".join(f"{path}: {why}" for path, why in batches.errors.items())
            raise UsageError(f"none of the {len(files)} image(s) could be read ({reasons}).")
        if rows < len(files):
            _keep_rows(npy, rows)
    errors.update(batches.errors)  # the files that could not be read
    return Features(
        features=output,
        index=index,
        model=name,
        layer=layer,
        pooling=pooling if _is_spatial(network, layer) else None,
        shape=(rows, *feature_shape),
        errors=dict(sorted(errors.items(), key=lambda item: rank.get(item[0], len(rank)))),
    )


def _load(model):
    """``(main-path float32 model, name)`` from a ``.keras`` path or a Keras model."""
    if isinstance(model, keras.Model):
        return inference_model(model), model.name
    path = os.fspath(model)
    if not path.endswith(".keras"):
        raise UsageError(
            f"model {path!r} is not a .keras checkpoint: features are read from a Keras model's "
            "layers, which exported models (SavedModel, TFLite, ONNX) do not keep."
        )
    if not os.path.isfile(path):
        raise UsageError(f"model {path!r} does not exist.")
    try:
        loaded = keras.saving.load_model(path, safe_mode=True)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot load the Keras model {path!r}: {error}") from None
    return inference_model(loaded), path


def _is_spatial(network, name):
    return len(network.get_layer(name).output.shape) == 4


def _check_layer(network, name):
    """``name`` (or the default) if it is a layer on the main path with a map or a vector."""
    names = [layer.name for layer in network.layers]
    if name is None:
        name = DEFAULT_LAYER if DEFAULT_LAYER in names else names[-1]
    usable = [
        layer.name
        for layer in network.layers
        if len(layer.output.shape) in (2, 4) and not isinstance(layer, keras.layers.InputLayer)
    ]
    if name not in usable:
        valid = [n for n in _PAPER_LAYERS if n in usable] or usable[-8:]
        what = "is not a feature layer" if name in names else "is not a layer"
        raise UsageError(
            f"`layer` {name!r} {what} of {network.name!r}; valid: {', '.join(valid)}, or "
            "another of its layers by name (a branch: inception_4e_3x3, ...)."
        )
    return name


def _unit_output(network, name):
    """The layer whose output is ``name``'s in the paper's sense: a convolution's after its ReLU,
    which in the BatchNorm variants is a separate layer (``conv2`` -> ``conv2_relu``)."""
    relu = f"{name}_relu"
    return relu if relu in {layer.name for layer in network.layers} else name


def _extractor(network, name, pooling):
    """The model from pixels to the layer's output, pooled in the graph when asked."""
    output = feature_model(network, [name]).output[name]
    if len(output.shape) == 4 and pooling is not None:
        pool = {"avg": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D}
        output = pool[pooling](name=f"{name}_{pooling}_pool")(output)
    return keras.Model(network.input, output, name=f"{network.name}_features")


def _list_images(paths):
    """``(files, {file: class}, errors, {path: rank})``: the files as ``predict`` lists them,
    each once; the class of a file under a given folder is the sub-folder of that folder it is
    in; the rank of every file and failed input in the order they were met."""
    classes, errors, rank = {}, {}, {}
    for path in map(os.fspath, paths):
        found, problems = expand_image_paths([path])
        errors.update(problems)
        for file in [*problems, *found]:
            rank.setdefault(file, len(rank))
        for file in found:
            if file not in classes:
                parts = os.path.relpath(file, path).split(os.sep) if os.path.isdir(path) else []
                classes[file] = parts[0] if len(parts) > 1 else ""
    return list(classes), classes, errors, rank


def _write(extractor, batches, classes, npy, index, shape, on_batch):
    """Streams the batches' features into a preallocated ``.npy`` and their files into the CSV;
    returns the number of rows written."""
    features = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float32, shape=shape)
    rows = 0
    try:
        with open(index, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_COLUMNS)
            for batch, paths in batches:
                values = np.asarray(extractor.predict_on_batch(batch), dtype=np.float32)
                features[rows : rows + len(values)] = values
                rows += len(values)
                writer.writerows((path, classes[path]) for path in paths)
                if on_batch is not None:
                    on_batch(rows, shape[0])
        features.flush()
    finally:
        del features  # unmapped before the file is cut or renamed
    return rows


def _keep_rows(path, rows):
    """Cuts the ``.npy`` at ``path`` to its first ``rows`` rows (the rest were reserved for
    images that could not be read).

    Rewrites the shape in the header in place: NumPy pads every header so that the first axis
    can change length without moving the data (its "growth axis" padding), which is checked.
    """
    fmt = np.lib.format
    with open(path, "r+b") as f:
        version = fmt.read_magic(f)
        read, write = {
            (1, 0): (fmt.read_array_header_1_0, fmt.write_array_header_1_0),
            (2, 0): (fmt.read_array_header_2_0, fmt.write_array_header_2_0),
        }[version]
        shape, fortran_order, dtype = read(f)
        offset = f.tell()
        f.seek(0)
        header = {
            "descr": fmt.dtype_to_descr(dtype),
            "fortran_order": fortran_order,
            "shape": (rows, *shape[1:]),
        }
        write(f, header)
        if f.tell() != offset:  # NumPy without the padding: the data would have moved
            raise RuntimeError(f"cannot shorten {path} in place: its header changed length")
        f.truncate(offset + rows * int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize)

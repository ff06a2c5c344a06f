"""Published and local weights into a model: download a preset once into the Keras cache, convert
it to this package's layer names, cache the conversion, and assign it to a model's layers
(whole models, or the backbone of a fine-tuning run).

Set ``INCEPTION_KERAS_WEIGHTS_MIRROR`` to a URL prefix to download the presets' files from a mirror
(``<mirror>/<file name>``) instead of their publishers.
"""

import os
import tarfile
import tempfile

import keras
import numpy as np

from inception_keras.files import atomic_output, file_digest
from inception_keras.pretrained import caffe, slim
from inception_keras.pretrained.presets import WEIGHTS_PRESETS
from inception_keras.pretrained.sources import (
    DownloadError,
    Source,
    WeightsError,
    resolve,
)

MIRROR_ENV = "INCEPTION_KERAS_WEIGHTS_MIRROR"
# Part of the conversion cache's file names: change it whenever a converter's output changes.
CONVERSION_VERSION = 1
CACHE_SUBDIR = "models"


def cache_dir(directory=None):
    """``directory``, else the Keras cache directory (``$KERAS_HOME``, else ``~/.keras``)."""
    return (
        directory or os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    )


def download(preset, directory=None):
    """The preset's file, downloaded once into the Keras cache and checked against its SHA-1."""
    preset = WEIGHTS_PRESETS[preset] if isinstance(preset, str) else preset
    mirror = os.environ.get(MIRROR_ENV)
    origin = f"{mirror.rstrip('/')}/{preset.file_name}" if mirror else preset.origin
    root = cache_dir(directory)
    target = os.path.join(root, CACHE_SUBDIR, preset.file_name)
    # get_file silently falls back to /tmp/.keras when the directory does not exist yet.
    os.makedirs(os.path.dirname(target), exist_ok=True)
    for attempt in range(2):
        cached = os.path.exists(target)
        try:
            path = keras.utils.get_file(
                preset.file_name, origin, cache_subdir=CACHE_SUBDIR, cache_dir=root
            )
        except Exception as error:  # get_file raises a bare Exception for URL failures
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DownloadError(
                f"cannot download {origin} ({reason}). Without internet, fetch that file "
                f"elsewhere and pass its path: weights='/path/to/{preset.file_name}' "
                f"(CLI: inception-keras convert /path/to/{preset.file_name} ...)."
            ) from None
        # get_file checks only MD5 and SHA-256; the model zoo publishes a SHA-1.
        if preset.sha1 is None or file_digest(path, "sha1") == preset.sha1:
            return path
        os.remove(path)
        if not cached or attempt:
            raise DownloadError(
                f"{origin}: the downloaded file's SHA-1 is not the published "
                f"{preset.sha1}; nothing was kept."
            )
        # A file left in the cache by an interrupted download: fetch it once more.
    raise AssertionError("unreachable")


def convert_source(source, directory=None):
    """Our ``{layer name: [arrays]}`` for a source (presets through the conversion cache)."""
    try:
        return _convert(source, directory)
    except WeightsError:
        raise
    except ValueError as error:  # the converters' messages name the file and the layer
        raise WeightsError(str(error)) from None


def _convert(source, directory):
    if source.kind == "preset":
        return _cached_preset(WEIGHTS_PRESETS[source.location], directory)
    if source.kind == "caffe":
        return caffe.convert(source.location)
    if source.kind == "slim":
        return slim.convert(source.location)
    if source.kind == "slim_archive":
        return _convert_slim_archive(source.location, "inception_v1.ckpt")
    if source.kind == "keras":
        return _keras_weights(source.location)
    raise WeightsError(
        f"{source.location}: a .weights.h5 file loads only into a model built with "
        "the same arguments (GoogLeNet(weights=...))."
    )


def _cached_preset(preset, directory):
    cache = os.path.join(
        cache_dir(directory),
        CACHE_SUBDIR,
        f"inception_keras-{preset.name}-v{CONVERSION_VERSION}.npz",
    )
    if os.path.isfile(cache):
        try:
            return _read_npz(cache)
        except (OSError, ValueError, KeyError):
            pass  # damaged: convert again
    path = download(preset, directory)
    if preset.checkpoint:
        weights = _convert_slim_archive(path, preset.checkpoint)
    else:
        weights = caffe.convert(path)
    _write_npz(cache, weights)
    return weights


def _convert_slim_archive(path, checkpoint):
    try:
        with tempfile.TemporaryDirectory() as tmp, tarfile.open(path) as archive:
            members = [
                m for m in archive.getmembers() if os.path.basename(m.name).startswith(checkpoint)
            ]
            archive.extractall(tmp, members=members, filter="data")
            prefixes = {os.path.join(tmp, os.path.dirname(m.name), checkpoint) for m in members}
            if len(prefixes) != 1:
                raise WeightsError(f"{path} holds no {checkpoint} checkpoint.")
            return slim.convert(prefixes.pop())
    except (tarfile.TarError, EOFError, OSError) as error:
        raise WeightsError(f"corrupt or not a tar.gz archive: {path} ({error})") from None


def _keras_weights(path):
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises many kinds for a damaged file
        raise WeightsError(
            f"corrupt or not a Keras model file: {path} ({type(error).__name__})"
        ) from None
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def _write_npz(path, weights):
    """Writes atomically (a reader never sees half a cache file)."""
    arrays = {f"{name}:{i}": a for name, values in weights.items() for i, a in enumerate(values)}
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def _read_npz(path):
    weights = {}
    with np.load(path) as data:
        for key in sorted(
            data.files, key=lambda k: (k.rsplit(":", 1)[0], int(k.rsplit(":", 1)[1]))
        ):
            name = key.rsplit(":", 1)[0]
            weights.setdefault(name, []).append(data[key])
    return weights


def assign(model, weights, skip_mismatch=False):
    """Sets each layer of ``model`` that has weights from ``weights[layer.name]``.

    Returns ``(loaded, skipped)`` layer names. Without ``skip_mismatch`` a layer the weights lack
    or whose shapes differ raises ``WeightsError`` naming it; with it, such layers keep their
    initial weights (fine-tuning: a new classifier, aux heads at another input size).
    """
    loaded, skipped = [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        values = weights.get(layer.name)
        wanted = [tuple(w.shape) for w in layer.weights]
        have = None if values is None else [tuple(np.shape(v)) for v in values]
        if have != wanted:
            if skip_mismatch:
                skipped.append(layer.name)
                continue
            if values is None:
                raise WeightsError(f"the weights have no layer {layer.name!r}.")
            hint = (
                " (its shape depends on the input size: these weights need 224x224)"
                if layer.name.startswith("aux")
                else ""
            )
            raise WeightsError(
                f"layer {layer.name!r} expects weights of shapes {wanted}; the "
                f"source has {have}{hint}."
            )
        layer.set_weights(values)
        loaded.append(layer.name)
    return loaded, skipped


def load_into(model, source, skip_mismatch=False, directory=None):
    """Loads a resolved source into ``model``; see :func:`assign`."""
    if source.kind == "h5":
        model.load_weights(source.location)
        return [layer.name for layer in model.layers if layer.weights], []
    return assign(model, convert_source(source, directory), skip_mismatch)


# Layers that classify: always new when fine-tuning, whatever their shape.
CLASSIFIERS = ("fc", "aux1_fc2", "aux2_fc2")
# The layer after which the network is a feature extractor (what fine-tuning must find).
BACKBONE_END = "inception_5b"


def initialize_from(model, source, directory=None):
    """Starts fine-tuning: every layer of the backbone takes the source's weights, and so do the
    aux heads' convolution and first FC where their shapes match; the classifiers stay new.

    Returns ``(loaded, new)`` layer names. ``WeightsError`` when a backbone layer does not fit
    (the source is of another variant or not GoogLeNet).
    """
    source = resolve(source) if not isinstance(source, Source) else source
    if source.kind == "h5":
        raise WeightsError(
            f"{source.location}: a .weights.h5 file has no layer names to match; "
            "fine-tune from a .keras model instead."
        )
    weights = {k: v for k, v in convert_source(source, directory).items() if k not in CLASSIFIERS}
    backbone = {layer.name for layer in _ancestors(model, BACKBONE_END) if layer.weights}
    loaded, new = assign(model, weights, skip_mismatch=True)
    missing = sorted(backbone - set(loaded))
    if missing:
        raise WeightsError(
            f"the weights {source.location!r} do not fit this model's backbone "
            f"(layer {missing[0]!r} and {len(missing) - 1} more): another variant?"
        )
    return loaded, new


def freeze_until(model, name):
    """Makes ``name`` and every layer it depends on untrainable; returns their names.

    Frozen BatchNorm layers then run in inference mode (Keras does so for untrainable ones).
    """
    layers = _ancestors(model, name)
    for layer in layers:
        layer.trainable = False
    return [layer.name for layer in layers]


def _ancestors(model, name):
    """``name`` and every layer on a path from the input to it."""
    try:
        output = model.get_layer(name).output
    except ValueError:
        raise WeightsError(
            f"`freeze_until`: the model has no layer {name!r} (e.g. "
            "'inception_4e', 'inception_5b', 'pool4')."
        ) from None
    return [
        layer
        for layer in keras.Model(model.input, output).layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]

"""Published ImageNet weights as a ``.keras`` model file (``inception-keras convert``).

The file is built by the package's builder, so its layers carry the paper's names like every
other model here, and it loads with ``keras.saving.load_model(path, safe_mode=True)``. Its class
names and provenance go into a JSON file beside it (``bvlc.keras`` -> ``bvlc.json``), where
``predict``, ``evaluate``, ``export`` and ``verify`` find them.
"""

import json
import os
import tempfile

from inception_keras import imagenet, pretrained
from inception_keras.architecture import AUX_HEADS
from inception_keras.model import GoogLeNet
from inception_keras.pretrained.presets import PRESETS


def metadata_path(checkpoint):
    """The JSON file beside a ``.keras`` file that holds its class names and provenance."""
    return os.path.splitext(os.fspath(checkpoint))[0] + ".json"


def convert(source, output, overwrite=False, cache_dir=None):
    """Converts published weights into a ``.keras`` model at ``output``.

    Args:
        source: ``"bvlc"``, ``"slim"`` (downloaded once), a ``.caffemodel``, a TF-slim checkpoint
            prefix or its ``.tar.gz``.
        output: the ``.keras`` file to write (and its metadata beside it).
        overwrite: replace an existing ``output``.
        cache_dir: the download cache (default: the Keras cache).

    Returns:
        ``output``. A BVLC model has three outputs ``[predictions, aux1, aux2]`` (its aux heads
        were trained and published); a TF-slim model one.
    """
    output = os.fspath(output)
    if not output.endswith(".keras"):
        raise ValueError(f"--output must end in .keras; got {output!r}.")
    if os.path.exists(output) and not overwrite:
        raise ValueError(f"{output} exists; choose another --output or pass --overwrite.")
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise ValueError(f"the directory of --output {output!r} does not exist.")
    resolved = pretrained.resolve(source)
    if not resolved.imagenet:
        raise ValueError(f"{source!r} is not a published weights file: give 'bvlc', 'slim', a "
                         ".caffemodel or a TF-slim checkpoint.")
    weights = pretrained.convert_source(resolved, cache_dir)
    aux = all(f"{head}_fc2" in weights for head in AUX_HEADS)
    model = GoogLeNet(variant=resolved.variant, aux_logits=aux)
    pretrained.assign(model, weights)
    metadata = {
        "class_names": list(imagenet.class_names()),
        "wordnet_ids": list(imagenet.wordnet_ids()),
        "variant": resolved.variant,
        "source": resolved.location,
        "aux_heads": aux,
    }
    if resolved.kind == "preset":
        preset = PRESETS[resolved.location]
        metadata.update(origin=preset.origin, licence=preset.licence,
                        published_top1=preset.top1, published_top5=preset.top5)
    # Both files are written aside and renamed into place: never a half-written model.
    _atomic_write(output, model.save, suffix=".keras")
    _atomic_write(metadata_path(output), lambda path: _write_json(path, metadata), suffix=".json")
    return output


def _write_json(path, data):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)


def _atomic_write(path, write, suffix):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=suffix,
                               prefix=".tmp-")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

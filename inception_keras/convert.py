"""Published ImageNet weights as a ``.keras`` model file (``inception-keras convert``).

The file is built by the package's builder, so its layers carry the paper's names like every
other model here, and it loads with ``keras.saving.load_model(path, safe_mode=True)``. Its class
names and provenance go into a JSON file beside it (``bvlc.keras`` -> ``bvlc.json``), where
``predict``, ``evaluate``, ``export`` and ``verify`` find them.
"""

import json
import os

import keras

from inception_keras import imagenet, pretrained
from inception_keras.architecture import AUX_HEADS
from inception_keras.errors import UsageError
from inception_keras.files import atomic_output, metadata_path
from inception_keras.model import GoogLeNet
from inception_keras.pretrained.presets import WEIGHTS_PRESETS


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
        raise UsageError(f"--output must end in .keras; got {output!r}.")
    if os.path.exists(output) and not overwrite:
        raise UsageError(f"{output} exists; choose another --output or pass --overwrite.")
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise UsageError(f"the directory of --output {output!r} does not exist.")
    resolved = pretrained.resolve(source)
    if not resolved.imagenet:
        raise UsageError(
            f"{source!r} is not a published weights file: give 'bvlc', 'slim', a "
            ".caffemodel or a TF-slim checkpoint."
        )
    weights = pretrained.convert_source(resolved, cache_dir)
    aux = all(f"{head}_fc2" in weights for head in AUX_HEADS)
    model = GoogLeNet(variant=resolved.variant, include_aux=aux)
    pretrained.assign(model, weights)
    metadata = {
        "class_names": list(imagenet.class_names()),
        "wordnet_ids": list(imagenet.wordnet_ids()),
        "variant": resolved.variant,
        "source": resolved.location,
        "aux_heads": aux,
    }
    if resolved.kind == "preset":
        preset = WEIGHTS_PRESETS[resolved.location]
        metadata.update(
            origin=preset.origin,
            licence=preset.licence,
            published_top1=preset.top1,
            published_top5=preset.top5,
        )
    # Both files are written aside and renamed into place: never a half-written model.
    with atomic_output(output, suffix=".keras") as tmp:
        keras.saving.save_model(model, tmp, zipped=True)
    with atomic_output(metadata_path(output)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=1)
    return output

"""What a ``weights`` argument names, without TensorFlow: :func:`resolve` turns it into a
:class:`Source` (a published preset, a file of a known kind), :func:`check_weights_argument`
holds it to the model's other arguments, :func:`weights_variant` says which variant it builds.

Reading a ``.keras`` file's variant opens only its ``config.json``, so a
:class:`~inception_keras.run_config.TrainConfig` with ``weights`` is checked without TensorFlow; the
loading itself is :mod:`inception_keras.pretrained.loading`'s.
"""

import dataclasses
import json
import os
import zipfile

from inception_keras import defaults
from inception_keras.errors import UsageError
from inception_keras.pretrained.presets import IMAGENET, WEIGHTS_PRESETS

IMAGENET_CLASSES = defaults.IMAGENET_CLASSES


class WeightsError(UsageError):
    """Weights that cannot be had or do not fit the model; the message is one line for the user."""


class DownloadError(WeightsError):
    """A published file could not be downloaded (no network, the host is down, a bad hash)."""


@dataclasses.dataclass(frozen=True)
class Source:
    """A resolved weights source.

    Attributes:
        kind: ``"preset"``, ``"caffe"``, ``"slim"``, ``"slim_archive"``, ``"keras"`` or ``"h5"``.
        location: the preset's name or the file's path.
        variant: the variant the weights fit; ``None`` for ``"keras"``/``"h5"`` (any).
    """

    kind: str
    location: str
    variant: str | None

    @property
    def imagenet(self):
        """Whether these are published ImageNet weights (1000 classes, class names known)."""
        return self.kind in ("preset", "caffe", "slim", "slim_archive")

    @property
    def aux_heads(self):
        """Whether the source holds the aux classifiers' weights (``None``: unknown)."""
        if self.kind == "preset":
            return WEIGHTS_PRESETS[self.location].aux_heads
        if self.kind in ("slim", "slim_archive"):
            return False
        return None


def resolve(weights, variant=None):
    """The :class:`Source` that ``weights`` names; ``WeightsError`` naming it if none.

    ``variant`` chooses the preset for ``"imagenet"``.
    """
    text = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
    if not isinstance(text, str):
        raise WeightsError(
            f"`weights` must be None, 'imagenet', a preset name {tuple(WEIGHTS_PRESETS)} "
            f"or a path; got {weights!r}."
        )
    if text == "imagenet":
        if variant not in IMAGENET:
            raise WeightsError(
                f"no published ImageNet weights exist for the {variant!r} variant; use "
                f"variant='paper' (BVLC's Caffe model) or variant='slim' (TF-slim's)."
            )
        text = IMAGENET[variant]
    if text in WEIGHTS_PRESETS:
        return Source("preset", text, WEIGHTS_PRESETS[text].variant)
    path = os.path.expanduser(text)
    if path.endswith(".caffemodel") and os.path.isfile(path):
        return Source("caffe", path, "paper")
    if path.endswith((".tar.gz", ".tgz")) and os.path.isfile(path):
        return Source("slim_archive", path, "slim")
    if (
        os.path.isfile(path + ".index")
        or os.path.isfile(path + ".meta")
        or (path.endswith(".ckpt") and os.path.isfile(path))
    ):
        return Source("slim", path, "slim")
    if path.endswith(".keras") and os.path.isfile(path):
        return Source("keras", path, None)
    if path.endswith(".h5") and os.path.isfile(path):
        return Source("h5", path, None)
    if not os.path.exists(path):
        raise WeightsError(
            f"`weights` {text!r}: no such file, and not 'imagenet' or a preset "
            f"name {tuple(WEIGHTS_PRESETS)}."
        )
    raise WeightsError(
        f"`weights` {text!r} is not a .caffemodel, a TF-slim checkpoint prefix or "
        "archive, a .keras model or a .weights.h5 file."
    )


def check_weights_argument(weights, variant, include_top, classes, include_aux):
    """Validates ``GoogLeNet``'s ``weights`` against its other arguments (before building)."""
    if weights is None:
        return None
    try:
        source = resolve(weights, variant)
    except WeightsError as error:
        raise WeightsError(f"`weights`: {error}") from None
    if source.variant is not None and source.variant != variant:
        raise WeightsError(
            f"`weights` {weights!r} are for the {source.variant!r} variant; got "
            f"variant={variant!r}."
        )
    if source.imagenet and include_top and classes != IMAGENET_CLASSES:
        raise WeightsError(
            f"`classes` must be {IMAGENET_CLASSES} with ImageNet `weights` and "
            f"include_top=True; got {classes}. For other classes fine-tune "
            "(inception-keras train --weights ...)."
        )
    if include_aux and source.aux_heads is False:
        raise WeightsError(
            f"`include_aux`: the weights {weights!r} have no aux classifiers; "
            "use include_aux=False."
        )
    return source


def keras_model_variant(path):
    """The variant of a ``.keras`` GoogLeNet, read from its layer configuration."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        raise WeightsError(f"corrupt or not a Keras model file: {path}") from None
    layers = config.get("config", {}).get("layers", [])
    classes = {layer.get("class_name") for layer in layers}
    if "LocalResponseNormalization" in classes:
        # The naive variant's blocks have no 1x1 reductions before their 3x3 convolutions.
        reduced = any(layer.get("name", "").endswith("_3x3_reduce") for layer in layers)
        return "paper" if reduced else "naive"
    norms = [layer for layer in layers if layer.get("class_name") == "BatchNormalization"]
    if norms:
        return "bn" if norms[0].get("config", {}).get("scale", True) else "slim"
    raise WeightsError(f"{path} is not a GoogLeNet of a known variant.")


def weights_variant(weights):
    """The variant that fine-tuning from ``weights`` builds."""
    source = resolve(weights)
    return source.variant or keras_model_variant(source.location)

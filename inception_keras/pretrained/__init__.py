"""Published ImageNet weights for GoogLeNet: resolve a source, download it once, convert it to this
package's layer names, cache the conversion, and load it into a model.

A *source* is one of:

- a preset name from :data:`presets.WEIGHTS_PRESETS` (``"bvlc"``, ``"slim"``) or ``"imagenet"`` (the
  variant's preset), downloaded with ``keras.utils.get_file`` into the Keras cache;
- a BVLC GoogLeNet ``.caffemodel`` file, a TF-slim checkpoint prefix (``.../inception_v1.ckpt``)
  or its ``.tar.gz`` archive (for machines without internet);
- a ``.keras`` model (e.g. written by ``inception-keras convert``): its layers' weights by name;
- a ``model.save_weights`` file (``.weights.h5``), loaded by Keras as it is.

Set ``INCEPTION_KERAS_WEIGHTS_MIRROR`` to a URL prefix to download the presets' files from a mirror
(``<mirror>/<file name>``) instead of their publishers.

:mod:`~inception_keras.pretrained.presets` (the data) and :mod:`~inception_keras.pretrained.sources`
(what a ``weights`` argument names) need no TensorFlow and are imported with the package;
:mod:`~inception_keras.pretrained.loading` (download, convert, load) is imported when one of its
names is first used.
"""

from inception_keras import lazy
from inception_keras.pretrained.presets import IMAGENET, PRESETS, WEIGHTS_PRESETS
from inception_keras.pretrained.sources import (
    IMAGENET_CLASSES,
    DownloadError,
    Source,
    WeightsError,
    check_weights_argument,
    keras_model_variant,
    resolve,
    weights_variant,
)

_LOADING = (
    "BACKBONE_END",
    "CACHE_SUBDIR",
    "CLASSIFIERS",
    "CONVERSION_VERSION",
    "MIRROR_ENV",
    "assign",
    "cache_dir",
    "convert_source",
    "download",
    "freeze_until",
    "initialize_from",
    "load_into",
)
__all__ = [
    "IMAGENET",
    "IMAGENET_CLASSES",
    "PRESETS",
    "WEIGHTS_PRESETS",
    "DownloadError",
    "Source",
    "WeightsError",
    "check_weights_argument",
    "keras_model_variant",
    "resolve",
    "weights_variant",
    *_LOADING,
]
__getattr__, __dir__ = lazy.exports(__name__, dict.fromkeys(_LOADING, "loading"))

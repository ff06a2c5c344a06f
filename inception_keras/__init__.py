"""inception-keras: GoogLeNet / Inception v1 (Szegedy et al., CVPR 2015), Keras 3 on TensorFlow.

The public API below is imported on first use (``ik.GoogLeNet``, ``from inception_keras import
fit``): importing the package itself imports neither TensorFlow nor Keras, so the command line
answers ``--help`` at once and the configuration classes cost nothing to build.
"""

from inception_keras import runtime as _runtime

# Before anything imports TensorFlow: its oneDNN CPU kernels, unless TF_ENABLE_ONEDNN_OPTS says
# otherwise or TensorFlow was imported first (see runtime.prefer_onednn; README "Performance").
_runtime.prefer_onednn()

import wrapt as _wrapt  # noqa: E402

from inception_keras import lazy as _lazy  # noqa: E402
from inception_keras.version import VERSION as __version__  # noqa: E402, F401

# Each public name and the module it comes from. The modules that build models check, when
# imported, that Keras runs on TensorFlow (inception_keras.layers).
_EXPORTS = {
    "DataConfig": "data_config",
    "GoogLeNet": "model",
    "TrainConfig": "run_config",
    "evaluate": "evaluation",
    "evaluate_model": "evaluation",
    "extract_features": "features",
    "fit": "training",
    "load_data": "data",
    "multi_crop": "crops",
    "train": "training",
    "LocalResponseNormalization": "layers",
    "TABLE_1": "architecture",
    "feature_model": "model",
    "inception_block": "model",
    "inference_model": "model",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = _lazy.exports(__name__, _EXPORTS)


def _register_keras_objects(keras):
    """Registers this package's Keras classes (layers, optimizers, schedules), which checkpoints
    name (``inception_keras>Conv2D``): Keras loads a checkpoint only once they are registered."""
    if keras.backend.backend() != "tensorflow":
        return  # they are TensorFlow's; the first model built says so (inception_keras.layers)
    from inception_keras import layers, optimizers, schedules  # noqa: F401 (registered on import)


# ``import inception_keras`` before ``keras.saving.load_model`` is all loading a checkpoint needs:
# the package registers its classes the moment Keras is imported (at once if it already is),
# without importing Keras itself.
_wrapt.register_post_import_hook(_register_keras_objects, "keras")

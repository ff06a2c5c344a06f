"""inception-keras: GoogLeNet / Inception v1 (Szegedy et al., CVPR 2015), Keras 3 on TensorFlow."""

__version__ = "0.1.0"

from inception_keras import runtime as _runtime

# Before Keras imports TensorFlow: its oneDNN CPU kernels, unless TF_ENABLE_ONEDNN_OPTS says
# otherwise or TensorFlow was imported first (see runtime.prefer_onednn; README "Performance").
_runtime.prefer_onednn()

import keras as _keras  # noqa: E402

if _keras.backend.backend() != "tensorflow":
    # The LRN layer, tf.data pipelines and all exporters are TensorFlow; fail here, not deep inside.
    raise ImportError(
        f"inception_keras needs Keras on the TensorFlow backend, but Keras is using "
        f"{_keras.backend.backend()!r}. Set KERAS_BACKEND=tensorflow (environment variable) or "
        '"backend": "tensorflow" in ~/.keras/keras.json.'
    )

from inception_keras.data import DataConfig, load_data  # noqa: E402
from inception_keras.evaluation import evaluate, evaluate_model, multi_crop  # noqa: E402
from inception_keras.layers import LocalResponseNormalization  # noqa: E402
from inception_keras.model import (  # noqa: E402
    TABLE_1,
    GoogLeNet,
    feature_model,
    inception_block,
    inference_model,
)
from inception_keras.training import TrainConfig, fit, train  # noqa: E402

__all__ = [
    "DataConfig",
    "GoogLeNet",
    "TrainConfig",
    "evaluate",
    "evaluate_model",
    "fit",
    "load_data",
    "multi_crop",
    "train",
    "LocalResponseNormalization",
    "TABLE_1",
    "feature_model",
    "inception_block",
    "inference_model",
]

"""inception-keras: GoogLeNet / Inception v1 (Szegedy et al., CVPR 2015) for Keras 3 on TensorFlow."""

__version__ = "0.1.0"

import keras as _keras

if _keras.backend.backend() != "tensorflow":
    # The LRN layer, tf.data pipelines and all exporters are TensorFlow; fail here, not deep inside.
    raise ImportError(
        f"inception_keras needs Keras on the TensorFlow backend, but Keras is using "
        f"{_keras.backend.backend()!r}. Set KERAS_BACKEND=tensorflow (environment variable) or "
        '"backend": "tensorflow" in ~/.keras/keras.json.'
    )

from inception_keras.layers import LocalResponseNormalization  # noqa: E402
from inception_keras.model import (  # noqa: E402
    TABLE_1,
    GoogLeNet,
    feature_model,
    inception_block,
    inference_model,
)

__all__ = [
    "GoogLeNet",
    "LocalResponseNormalization",
    "TABLE_1",
    "feature_model",
    "inception_block",
    "inference_model",
]

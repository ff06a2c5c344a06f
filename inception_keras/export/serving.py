"""What every exported artefact shares: the tensor names users see and the exported computation.

Each format's exporter builds on :func:`serving_endpoint`, so a SavedModel, a TFLite and an ONNX
model all take ``images`` (float32 RGB pixels in [0, 255]) and return ``probabilities``.
"""

import tensorflow as tf

from inception_keras import logs
from inception_keras.errors import UsageError
from inception_keras.model import inference_model
from inception_keras.runners.names import (  # noqa: F401 (re-exported: the exporters' names)
    INPUT_NAME,
    OUTPUT_NAME,
    SERVING_DEFAULT,
)


def serving_endpoint(model):
    """The exported computation: ``(inference model, fn, input_signature)``.

    ``fn(images)`` returns ``{"probabilities": ...}`` with the model called with ``training=False``
    (dropout inactive); the dict key and the ``TensorSpec`` name are what give the exported
    artefacts their tensor names. The batch dimension is left unknown.
    """
    model = inference_model(model)
    if len(model.inputs) != 1:
        raise UsageError(f"`model` must have one image input; got {len(model.inputs)} inputs.")
    shape = (None,) + tuple(model.inputs[0].shape[1:])
    signature = [tf.TensorSpec(shape, tf.float32, name=INPUT_NAME)]

    def fn(images):
        return {OUTPUT_NAME: tf.cast(model(images, training=False), tf.float32)}

    return model, fn, signature


def without_table_initializer_warning():
    """Drops TensorFlow's warning that it cannot list a lookup table's initializer in a
    MetaGraph's collections: SavedModel export (the class-name table) and tf2onnx (which exports
    a MetaGraph to freeze the variables) print it on every export, and nothing reads those
    collections."""
    return logs.ignoring_log_records(
        "tensorflow", r"^Issue encountered when serializing table_initializer\."
    )

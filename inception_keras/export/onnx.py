"""ONNX export for ONNX Runtime.

The exported graph is the inference model (aux heads stripped, dropout inactive, softmax out)
taking raw RGB float pixels in [0, 255]: input ``images`` [batch, H, W, 3] with a symbolic batch
dimension, output ``probabilities`` [batch, classes]. The LRN layers of the ``paper`` variant are
written as elementwise ops and a 1x1 convolution
(:func:`inception_keras.layers.lrn_as_elementwise_ops`),
which ONNX Runtime runs faster than its ``LRN`` node.
"""

import tensorflow as tf

from inception_keras.errors import UsageError
from inception_keras.export.config import ONNX_OPSET
from inception_keras.export.serving import serving_endpoint, without_table_initializer_warning
from inception_keras.files import atomic_output
from inception_keras.layers import lrn_as_elementwise_ops
from inception_keras.model import inference_model
from inception_keras.runners.onnx import OnnxRunner  # noqa: F401 (its runner, importable here too)


def export_onnx(model, path, opset=ONNX_OPSET):
    """Converts the inference model of ``model`` to an ONNX file and checks it.

    Converted with ``tf2onnx.convert.from_function`` on the same named endpoint the TFLite export
    uses. Why not ``from_keras``: it takes its tensor names from the Keras model (the output
    would be ``predictions``, not ``probabilities``). Why not ``model.export(format="onnx")``: on
    the TensorFlow backend it wraps this same ``from_function`` call, but writes straight to the
    target file (not atomically) and gives no control over the output's name. ``from_function``
    names the graph's input and output after the ``TensorSpec`` name and the returned dict key.

    Args:
        model: a GoogLeNet model (aux heads, if any, are stripped).
        path: the ``.onnx`` file to write (atomically; parent folders are created).
        opset: ONNX opset version (13 or later; LRN exists in every opset).

    Returns:
        ``path``.
    """
    # Deferred: tf2onnx and onnx are heavy and only exporting needs them.
    import onnx
    import tf2onnx

    if int(opset) != opset or opset < 13:
        raise UsageError(f"`opset` must be an integer >= 13; got {opset!r}.")
    model = inference_model(model)  # first: a float32 copy of a mixed-precision model is new layers
    _, fn, signature = serving_endpoint(model)
    function = tf.function(fn, input_signature=signature)
    with (
        atomic_output(path) as tmp,
        lrn_as_elementwise_ops(model),
        without_table_initializer_warning(),
    ):
        proto, _ = tf2onnx.convert.from_function(
            function, input_signature=signature, opset=int(opset)
        )
        onnx.checker.check_model(proto, full_check=True)
        onnx.save_model(proto, tmp)
    return path

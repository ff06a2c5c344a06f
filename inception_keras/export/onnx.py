"""ONNX export for ONNX Runtime.

The exported graph is the inference model (aux heads stripped, dropout inactive, softmax out)
taking raw RGB float pixels in [0, 255]: input ``images`` [batch, H, W, 3] with a symbolic batch
dimension, output ``probabilities`` [batch, classes]. The LRN layers of the ``paper`` variant are
written as elementwise ops and a 1x1 convolution
(:func:`inception_keras.layers.lrn_as_elementwise_ops`),
which ONNX Runtime runs faster than its ``LRN`` node.
"""

import os

import numpy as np
import tensorflow as tf

from inception_keras.errors import UsageError
from inception_keras.export.config import ONNX_OPSET
from inception_keras.export.serving import INPUT_NAME, OUTPUT_NAME, serving_endpoint
from inception_keras.files import atomic_output
from inception_keras.layers import lrn_as_elementwise_ops
from inception_keras.model import inference_model


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
    with atomic_output(path) as tmp, lrn_as_elementwise_ops(model):
        proto, _ = tf2onnx.convert.from_function(
            function, input_signature=signature, opset=int(opset)
        )
        onnx.checker.check_model(proto, full_check=True)
        onnx.save_model(proto, tmp)
    return path


class OnnxRunner:
    """Runs an exported ``.onnx`` model in ONNX Runtime on the CPU.

    ``runner(images)`` takes float32 [B, H, W, 3] raw pixels (any B) and returns float32
    probabilities [B, classes]. ``threads`` sets the intra-op thread count (``None``: the
    runtime's default, one per physical core). ``session_options`` sets anything else:
    ``onnxruntime.SessionOptions`` attributes by name (``graph_optimization_level``,
    ``execution_mode``, ...) and dotted session config keys (``"session.intra_op.allow_spinning"``).
    ONNX Runtime's defaults measured fastest of those tried (``inception-keras benchmark
    --sections settings``).
    """

    def __init__(self, path, threads=None, session_options=None):
        import onnxruntime  # deferred: a heavy runtime, needed only to run an .onnx file

        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        for key, value in (session_options or {}).items():
            if "." in key:
                options.add_session_config_entry(key, str(value))
            elif hasattr(options, key):
                setattr(options, key, value)
            else:
                raise UsageError(f"unknown ONNX Runtime session option {key!r}.")
        self.path = os.fspath(path)
        self._session = onnxruntime.InferenceSession(
            self.path, sess_options=options, providers=["CPUExecutionProvider"]
        )
        shape = self._session.get_inputs()[0].shape  # [batch (symbolic), H, W, 3]
        self.input_shape = (None, *(int(d) for d in shape[1:]))
        self.num_classes = int(self._session.get_outputs()[0].shape[-1])

    def __call__(self, images):
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4:
            raise UsageError(f"`images` must be [B, H, W, 3]; got shape {images.shape}.")
        (probabilities,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: images})
        return probabilities

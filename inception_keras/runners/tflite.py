"""Runs an exported ``.tflite`` model in LiteRT, quantizing and dequantizing integer tensors."""

import os
import threading

import numpy as np

from inception_keras import logs
from inception_keras.errors import UsageError
from inception_keras.runners.names import INPUT_NAME, OUTPUT_NAME, SERVING_DEFAULT

# What LiteRT writes to stderr when a call first applies XNNPACK: nothing a user can act on.
XNNPACK_NOTE = r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"
# Dropping it swaps the process's stderr for the call: one first call at a time.
_FIRST_CALL = threading.Lock()


class TFLiteRunner:
    """Runs an exported ``.tflite`` model in LiteRT (``ai_edge_litert``) through its signature.

    ``runner(images)`` takes float32 [B, H, W, 3] raw pixels (any B) and returns float32
    probabilities [B, classes]. For int8/uint8 input and output tensors it quantizes the input and
    dequantizes the output with the tensors' own scale and zero point.

    ``num_threads`` defaults to one per core: LiteRT's own default is a single thread, which
    leaves cores idle (``inception-keras benchmark --sections settings`` measures both).
    ``xnnpack=False`` runs TFLite's builtin kernels only (much slower; for comparison).
    """

    def __init__(self, path, num_threads=None, xnnpack=True):
        # ai_edge_litert, not tf.lite.Interpreter: the latter is deprecated in favour of LiteRT.
        # Deferred: the LiteRT runtime is loaded only to run a .tflite file.
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.path = os.fspath(path)
        resolver = (
            OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        num_threads = os.cpu_count() if num_threads is None else num_threads
        self._interpreter = Interpreter(
            model_path=self.path, num_threads=num_threads, experimental_op_resolver_type=resolver
        )
        self._runner = self._interpreter.get_signature_runner(SERVING_DEFAULT)
        self.input_details = self._runner.get_input_details()[INPUT_NAME]
        self.output_details = self._runner.get_output_details()[OUTPUT_NAME]
        # The batch dimension reads 1 in the flatbuffer; it is dynamic (shape_signature -1).
        self.input_shape = (None, *(int(d) for d in self.input_details["shape"][1:]))
        self.num_classes = int(self.output_details["shape"][-1])
        self._note_pending = xnnpack

    def __call__(self, images):
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4:
            raise UsageError(f"`images` must be [B, H, W, 3]; got shape {images.shape}.")
        # The signature runner resizes the input to this batch size on every call.
        inputs = {INPUT_NAME: _quantize(images, self.input_details)}
        if self._note_pending:
            with _FIRST_CALL, logs.dropping_stderr_lines(XNNPACK_NOTE):
                outputs = self._runner(**inputs)
            self._note_pending = False
        else:
            outputs = self._runner(**inputs)
        return _dequantize(outputs[OUTPUT_NAME], self.output_details)


def _quantize(values, details):
    dtype = np.dtype(details["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return values.astype(dtype)
    scale, zero_point = details["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(dtype)


def _dequantize(values, details):
    if not np.issubdtype(np.dtype(details["dtype"]), np.integer):
        return np.array(values, dtype=np.float32)
    scale, zero_point = details["quantization"]
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)

"""Runs an exported ``.onnx`` model in ONNX Runtime."""

import os

import numpy as np

from inception_keras.errors import UsageError
from inception_keras.runners.names import INPUT_NAME, OUTPUT_NAME


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

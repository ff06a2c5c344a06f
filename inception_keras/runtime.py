"""Process-wide TensorFlow settings that only take effect before TensorFlow is imported.

This module imports nothing from TensorFlow or Keras at its top, so the package can apply
:func:`prefer_onednn` before it imports them.
"""

import os
import platform
import sys

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def prefer_onednn():
    """Ask TensorFlow for its oneDNN CPU kernels in this process, on x86-64, unless the user has
    chosen (``TF_ENABLE_ONEDNN_OPTS`` set, to ``0`` or ``1``) or TensorFlow is already imported.

    TensorFlow turns them on by itself only on x86 CPUs with AVX-512 VNNI/bf16 or AMX; on other
    x86 CPUs (AVX2 only) they train GoogLeNet markedly faster than TensorFlow's default Eigen
    kernels (docs/performance.md). TensorFlow reads the variable once, when it is imported, so
    there is no later switch. Returns whether this call set it.
    """
    if ONEDNN_VARIABLE in os.environ or "tensorflow" in sys.modules:
        return False
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False  # on Arm, TensorFlow's oneDNN (via ACL) default is its own choice
    os.environ[ONEDNN_VARIABLE] = "1"
    return True


def onednn_enabled():
    """Whether this process's TensorFlow runs its oneDNN CPU kernels, or None where TensorFlow
    does not say (the query is TensorFlow's internal one; there is no public API)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    query = getattr(_pywrap_util_port, "IsMklEnabled", None)
    return bool(query()) if query else None

"""Process-wide TensorFlow settings that only take effect before TensorFlow is imported.

This module imports nothing from TensorFlow or Keras at its top, so the package can apply
:func:`prefer_onednn` before it imports them.
"""

import functools
import os
import platform
import sys

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def is_x86_64():
    """Whether this machine is x86-64, by the platform's name for it."""
    return platform.machine().lower() in ("x86_64", "amd64")


def cpu_info(path="/proc/cpuinfo"):
    """``(model name, set of feature flags)`` of this machine's CPU, from Linux's ``path``; the
    platform's processor name and no flags where that file cannot be read (other systems)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags


@functools.cache
def x86_without_avx512():
    """Whether this is an x86-64 CPU known to lack AVX-512 (AVX2 and older): the CPUs on which
    TensorFlow's oneDNN filter-gradient kernel is slow (see ``inception_keras.layers.Conv2D``).
    False where the flags cannot be read."""
    flags = cpu_info()[1]
    return is_x86_64() and "avx2" in flags and "avx512f" not in flags


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
    if not is_x86_64():
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

"""The process-wide state a training run sets for itself, and puts back when it ends.

A run sets Keras' global dtype policy (its ``precision``) and seeds Python's and NumPy's random
generators (its ``seed``); :func:`restoring_global_state` gives the caller back the state they
had, on return or error, so models built after a run get the policy they would have had before.
TensorFlow's global seed has no getter to restore: it stays the run's.
"""

import contextlib
import functools
import random

import keras
import numpy as np


@contextlib.contextmanager
def restored_global_state():
    """Puts back the global dtype policy and the Python and NumPy random states on leaving."""
    policy = keras.mixed_precision.global_policy()
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(policy)
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def restoring_global_state(function):
    """Decorator: ``function`` runs inside :func:`restored_global_state`."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with restored_global_state():
            return function(*args, **kwargs)

    return wrapper

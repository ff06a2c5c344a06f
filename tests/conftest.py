"""Shared fixtures. Every test starts from, and leaves, the process's global Keras and random
state as it found them, so no test depends on the order the suite runs in.

pytest imports this file before any test module, so the package is imported here before
TensorFlow: the whole suite runs with the TensorFlow settings the package chooses
(inception_keras.runtime), as its command line and a user who imports it first get them."""

import random

import inception_keras  # noqa: F401  before TensorFlow, for its CPU kernels

# isort: split
import keras
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def restore_global_state():
    """Puts back the global dtype policy and the Python and NumPy random states after each test
    (code under test and tests themselves set them)."""
    policy = keras.mixed_precision.global_policy()
    python_state, numpy_state = random.getstate(), np.random.get_state()
    yield
    keras.mixed_precision.set_global_policy(policy)
    random.setstate(python_state)
    np.random.set_state(numpy_state)


@pytest.fixture(scope="session")
def shapes_data_dir(tmp_path_factory):
    """The built-in shapes set at smoke size, prepared once for the whole session."""
    from inception_keras import shapes

    path = tmp_path_factory.mktemp("tfds")
    shapes.prepare("shapes/smoke", str(path))
    return path

"""Imported by pytest before any test module: the package first, so that the whole suite runs
with the TensorFlow settings it chooses before TensorFlow is imported (inception_keras.runtime),
as its command line and a user who imports it first get them."""

import inception_keras  # noqa: F401

"""The names every exported artefact shares, that users and TF Serving clients see: the input
``images`` (float32 RGB pixels in [0, 255]), the output ``probabilities``, and the SavedModel's
signatures. TensorFlow-free."""

INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
SERVING_DEFAULT = "serving_default"  # TF Serving's default signature key
SERVING_BYTES = "serving_bytes"
BYTES_INPUT = "image_bytes"  # must end in "_bytes" for TF Serving's REST base64 decoding

"""What an export can hold and what ``verify`` holds it to, without TensorFlow: the formats, the
TFLite quantizations, the default ONNX opset and int8 calibration size, and :class:`Tolerances`.

The exporters and :mod:`~inception_keras.export.verify` use (and re-export) them; they live apart so
that the command line's ``--help`` and a configuration built in Python read them without importing
TensorFlow.
"""

import dataclasses

#: What :func:`inception_keras.export.export` writes; the SavedModel always (it is what the version
#: directory is for TF Serving).
FORMATS = ("saved_model", "tflite", "onnx")

#: TFLite variants (:func:`inception_keras.export.tflite.export_tflite`).
QUANTIZATIONS = ("float32", "float16", "dynamic_int8", "int8")

#: ONNX opset of the exported model (13 or later; LRN exists in every opset).
ONNX_OPSET = 17

#: Training images the full-integer int8 TFLite model is calibrated on.
CALIBRATION_IMAGES = 256


@dataclasses.dataclass
class Tolerances:
    """What each numeric format must achieve against the reference.

    Attributes:
        float32_max_diff: largest allowed |difference| of any probability (SavedModel, ONNX,
            float32 TFLite).
        float16_agreement: smallest allowed share of images with the same top-1 class (float16
            TFLite).
        int8_agreement: the same for the dynamic-range and full-integer int8 TFLite models.
    """

    float32_max_diff: float = 1e-5
    float16_agreement: float = 0.99
    int8_agreement: float = 0.95

"""TFLite export for LiteRT: float32, float16, dynamic-range int8 and full-integer int8 models.

The exported graph is the inference model (:func:`inception_keras.inference_model`: aux heads
stripped, dropout inactive, softmax out) taking raw RGB float pixels in [0, 255] (the model rescales
them itself). Its one signature, ``serving_default``, has the input ``images`` [B, H, W, 3] and the
output ``probabilities`` [B, classes]; the batch dimension is dynamic. In the float models the
paper variant's LRN is written as elementwise ops and a 1x1 convolution that XNNPACK runs
(:func:`inception_keras.layers.lrn_as_elementwise_ops`); the full-integer model computes the
square and window sum of that form in int8 and its power and division in float32.
"""

import tempfile

import keras
import numpy as np
import tensorflow as tf

from inception_keras.errors import UsageError
from inception_keras.export.config import QUANTIZATIONS
from inception_keras.export.serving import (
    INPUT_NAME,
    SERVING_DEFAULT,
    serving_endpoint,
)
from inception_keras.files import atomic_output
from inception_keras.layers import KEEP_FLOAT32_SCOPE, lrn_as_elementwise_ops
from inception_keras.model import inference_model
from inception_keras.runners.tflite import TFLiteRunner  # noqa: F401 (its runner, importable here too)

# int8_io=True means signed int8, the type TFLite's full-integer kernels use internally.
INT8_IO_TYPES = {True: tf.int8, "int8": tf.int8, "uint8": tf.uint8}


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------
def export_tflite(model, path, quantization="float32", representative_data=None, int8_io=False):
    """Converts the inference model of ``model`` to a ``.tflite`` file with builtin ops only.

    Args:
        model: a GoogLeNet model (aux heads, if any, are stripped).
        path: the ``.tflite`` file to write (atomically; parent folders are created).
        quantization: ``"float32"`` (no quantization), ``"float16"`` (float16 weights, float
            compute), ``"dynamic_int8"`` (int8 weights, activations quantized on the fly) or
            ``"int8"`` (full-integer: weights and activations int8, calibrated on
            ``representative_data``; LRN's power and division stay float32 between
            DEQUANTIZE/QUANTIZE builtins, as ops TFLite has no fast int8 kernel for).
        representative_data: required for ``"int8"``: a callable returning an iterable, or an
            iterable, of float32 image batches [B, H, W, 3] of real training images after the
            evaluation preprocessing (raw pixels in [0, 255]); elements may also be
            ``(images, labels)`` tuples, as in ``load_data(...).train``. A few hundred images are
            enough. See :func:`representative_dataset`.
        int8_io: with ``"int8"`` only: ``False`` keeps float32 input and output tensors; ``True``
            or ``"int8"`` makes them int8, ``"uint8"`` uint8 (:class:`TFLiteRunner` quantizes and
            dequantizes for you).

    Returns:
        ``path``.
    """
    if quantization not in QUANTIZATIONS:
        raise UsageError(f"`quantization` must be one of {QUANTIZATIONS}; got {quantization!r}.")
    if int8_io is not False and int8_io not in INT8_IO_TYPES:
        raise UsageError(f"`int8_io` must be False, True, 'int8' or 'uint8'; got {int8_io!r}.")
    if int8_io is not False and quantization != "int8":
        raise UsageError(f"`int8_io` needs quantization='int8'; got quantization={quantization!r}.")
    if quantization == "int8" and representative_data is None:
        raise UsageError(
            "quantization='int8' needs `representative_data`: float32 batches of real training "
            "images after the evaluation preprocessing, to calibrate the activation ranges."
        )

    model = inference_model(model)  # first: a float32 copy of a mixed-precision model is new layers
    with atomic_output(path) as tmp:
        with tempfile.TemporaryDirectory() as saved_model_dir, lrn_as_elementwise_ops(model):
            converter = _converter(model, saved_model_dir)
            _configure(converter, quantization, representative_data)
            if quantization == "int8":
                flatbuffer = _full_integer(converter, INT8_IO_TYPES.get(int8_io, tf.float32))
            else:
                flatbuffer = converter.convert()
        with open(tmp, "wb") as f:
            f.write(flatbuffer)
    return path


def _converter(model, saved_model_dir):
    """A converter for the serving endpoint, through a SavedModel.

    Why not ``from_keras_model``: it names the output ``output_0``. Why not
    ``from_concrete_functions``: with a trackable object it leaves the Keras 3 variables as
    ``READ_VARIABLE`` ops that fail at calibration; without one it takes the deprecated path that
    drops the signature (tensorflow/tensorflow#48320, seen again with TF 2.21). A SavedModel
    written by Keras' own ``ExportArchive`` (as ``from_keras_model`` does internally) freezes
    cleanly and keeps the signature and tensor names.
    """
    model, fn, signature = serving_endpoint(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVING_DEFAULT, fn, input_signature=signature)
    archive.write_out(saved_model_dir, verbose=False)
    return tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=[SERVING_DEFAULT]
    )


def _configure(converter, quantization, representative_data):
    # Builtin ops only everywhere: no SELECT_TF_OPS, so a model needing Flex ops fails to convert
    # instead of producing a file the plain LiteRT runtime cannot load.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization == "float32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = _calibration_samples(representative_data)


def _full_integer(converter, io_type):
    """The full-integer flatbuffer, with the ops under ``KEEP_FLOAT32_SCOPE`` left in float32.

    Written out because the converter has no public switch to keep chosen ops float in a
    full-integer model. It quantizes every op that has an int8 kernel, and TFLite's int8 SQRT and
    DIV are scalar loops outside XNNPACK: they made the paper variant's int8 model slower than its
    float32 one (LRN's own op is float-only and slow too). These are the two calls the converter
    makes itself (calibrate, then the MLIR quantizer), with the quantizer's node denylist that
    ``tf.lite.experimental.QuantizationDebugger`` also uses. TF is pinned to 2.21 (setup.cfg);
    tests check the resulting op types.
    """
    # Deferred: a private converter module, loaded only for full-integer export.
    from tensorflow.lite.python.convert import mlir_quantize

    converter._experimental_calibrate_only = True  # pylint: disable=protected-access
    calibrated = converter.convert()
    keep_float = [name for name in _tensor_names(calibrated) if f"/{KEEP_FLOAT32_SCOPE}/" in name]
    return mlir_quantize(
        calibrated,
        input_data_type=io_type,
        output_data_type=io_type,
        denylisted_nodes=keep_float or None,
    )


def _calibration_samples(representative_data):
    """Adapts ``representative_data`` to the converter's protocol: a callable yielding
    ``[array [1, H, W, 3]]``, one image at a time (the calibration graph runs batch 1)."""

    def samples():
        data = representative_data() if callable(representative_data) else representative_data
        count = 0
        for element in data:
            if isinstance(element, dict):
                element = element[INPUT_NAME]
            elif isinstance(element, (tuple, list)):
                element = element[0]  # (images, labels), or the converter's own [images]
            images = np.asarray(element, dtype=np.float32)
            if images.ndim == 3:
                images = images[None]
            for image in images:
                count += 1
                yield [image[None]]
        if count == 0:
            raise UsageError("`representative_data` yielded no images.")

    return samples


def representative_dataset(dataset, count=256):
    """``representative_data`` from a ``tf.data`` pipeline of ``(images, labels)`` batches.

    Use the training set through the evaluation preprocessing, e.g.
    ``load_data(dataclasses.replace(data_config, augment=None)).train`` (``augment=None`` makes
    the training pipeline apply the evaluation transform). Returns a callable yielding at most
    ``count`` single-image float32 batches.
    """

    def images():
        seen = 0
        for batch in dataset:
            batch = batch[0] if isinstance(batch, (tuple, list)) else batch
            for image in np.asarray(batch, dtype=np.float32):
                if seen >= count:
                    return
                seen += 1
                yield image[None]

    return images


# ---------------------------------------------------------------------------------------------
# Runtime
# ---------------------------------------------------------------------------------------------
def _tensor_names(flatbuffer):
    from ai_edge_litert import schema_py_generated as schema  # deferred: the LiteRT runtime

    model = schema.Model.GetRootAs(flatbuffer)
    return [
        subgraph.Tensors(t).Name().decode()
        for subgraph in (model.Subgraphs(s) for s in range(model.SubgraphsLength()))
        for t in range(subgraph.TensorsLength())
    ]


def ops(path):
    """The sorted set of operator names a ``.tflite`` file uses (custom ops by their custom code,
    e.g. ``FlexConv2D``).

    Read from the flatbuffer itself, not through an interpreter: a model with Flex ops cannot
    even be loaded by the plain LiteRT runtime, and those are exactly the ones to detect.
    """
    from ai_edge_litert import schema_py_generated as schema  # deferred: the LiteRT runtime

    with open(path, "rb") as f:
        model = schema.Model.GetRootAs(f.read())
    builtin_names = {
        value: name
        for name, value in vars(schema.BuiltinOperator).items()
        if not name.startswith("_")
    }
    names = set()
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            code = model.OperatorCodes(subgraph.Operators(o).OpcodeIndex())
            # Codes above 127 live in BuiltinCode; the deprecated int8 field saturates at 127.
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            if builtin == schema.BuiltinOperator.CUSTOM:
                names.add(code.CustomCode().decode())
            else:
                names.add(builtin_names.get(builtin, f"BUILTIN_{builtin}"))
    return sorted(names)

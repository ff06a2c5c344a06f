"""The versioned export: every format of one model written into one TF Serving version directory
``base_dir/<name>/<version>/`` - the SavedModel files, ``googlenet_<quantization>.tflite``,
``googlenet.onnx`` and ``manifest.json`` (sha256 and size of each file, input spec, class names,
source, training config, library versions). The directory is assembled aside and moved into place
whole, so a server watching ``base_dir`` never sees a half-written version.
"""

import dataclasses
import datetime
import json
import os

import keras
import tensorflow as tf

from inception_keras import preprocessing
from inception_keras.data import DataConfig, load_data
from inception_keras.errors import UsageError
from inception_keras.export import onnx, saved_model, tflite
from inception_keras.export.config import CALIBRATION_IMAGES, FORMATS, ONNX_OPSET, QUANTIZATIONS
from inception_keras.export.tflite import representative_dataset
from inception_keras.files import (
    DATA_CONFIG_FILE,
    MANIFEST,
    TRAIN_CONFIG_FILE,
    file_digest,
    read_json,
)
from inception_keras.image_batches import image_files_dataset
from inception_keras.image_files import expand_image_paths
from inception_keras.model import inference_model
from inception_keras.runners import KerasRunner, shipped_class_names
from inception_keras.version import VERSION, installed_version


def export(
    model,
    base_dir="saved_models",
    name="googlenet",
    version=None,
    formats=FORMATS,
    tflite_quantizations=None,
    representative_data=None,
    class_names=None,
    onnx_opset=ONNX_OPSET,
    overwrite=False,
    source=None,
    training_config=None,
    max_image_bytes=preprocessing.MAX_IMAGE_BYTES,
    max_image_pixels=preprocessing.MAX_IMAGE_PIXELS,
):
    """Exports ``model``'s inference model in ``formats`` into ``base_dir/name/<version>/``.

    Args:
        model: a GoogLeNet ``keras.Model`` (a training model's aux heads are stripped).
        base_dir, name, version, overwrite: TF Serving's layout; see
            :func:`inception_keras.export.saved_model.export_saved_model`.
        formats: any of ``FORMATS``; the SavedModel is always written (it is what the version
            directory is for TF Serving).
        tflite_quantizations: TFLite variants, a subset of ``QUANTIZATIONS`` (default all).
        representative_data: calibration images for ``int8`` (see ``tflite.export_tflite``).
        class_names: shipped in the SavedModel's assets and the manifest.
        onnx_opset: ONNX opset.
        source: where the weights came from (a checkpoint path), for the manifest.
        training_config: the run's configuration, for the manifest.
        max_image_bytes, max_image_pixels: limits of the SavedModel's ``serving_bytes``
            signature (see :func:`inception_keras.preprocessing.image_problem`).

    Returns:
        The version directory.
    """
    for folder in (base_dir, os.path.join(base_dir, name)):
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise UsageError(f"cannot export into {os.fspath(folder)!r}: it is a file.")
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise UsageError(f"`formats` {sorted(unknown)} unknown; choose from {FORMATS}.")
    tflite_quantizations = tflite_quantizations or QUANTIZATIONS
    bad = set(tflite_quantizations) - set(QUANTIZATIONS)
    if bad:
        raise UsageError(
            f"`tflite_quantizations` {sorted(bad)} unknown; choose from {QUANTIZATIONS}."
        )
    if "tflite" in formats and "int8" in tflite_quantizations and representative_data is None:
        raise UsageError(
            "`representative_data` is needed for the full-integer int8 TFLite model "
            "(calibration images from the training set), or leave out 'int8'."
        )
    model = inference_model(model)

    def write_other_formats(directory):
        if "tflite" in formats:
            for quantization in tflite_quantizations:
                tflite.export_tflite(
                    model,
                    os.path.join(directory, f"{name}_{quantization}.tflite"),
                    quantization=quantization,
                    representative_data=representative_data,
                )
        if "onnx" in formats:
            onnx.export_onnx(model, os.path.join(directory, f"{name}.onnx"), opset=onnx_opset)
        write_manifest(directory, model, class_names, source, training_config)

    return saved_model.export_saved_model(
        model,
        base_dir,
        name=name,
        version=version,
        class_names=class_names,
        overwrite=overwrite,
        before_publish=write_other_formats,
        max_image_bytes=max_image_bytes,
        max_image_pixels=max_image_pixels,
    )


def export_checkpoint(
    checkpoint,
    base_dir="saved_models",
    calibration_images=CALIBRATION_IMAGES,
    calibration_dir=None,
    **kwargs,
):
    """:func:`export` for a ``.keras`` checkpoint written by ``train``.

    The class names and training configuration come from ``train_config.json`` beside the
    checkpoint, the int8 calibration images (``calibration_images`` of them) from the training set
    described by ``data_config.json`` there, through the evaluation preprocessing, or from the
    image files under ``calibration_dir`` (needed for a converted ImageNet model, which has no
    training data beside it). Other keyword arguments go to :func:`export`.
    """
    model = KerasRunner(os.fspath(checkpoint)).model
    run_dir = os.path.dirname(os.path.abspath(checkpoint))
    train_config = read_json(os.path.join(run_dir, TRAIN_CONFIG_FILE))
    formats = kwargs.get("formats", FORMATS)
    if "tflite" in formats and "int8" in (kwargs.get("tflite_quantizations") or QUANTIZATIONS):
        if calibration_dir is not None:
            kwargs["representative_data"] = representative_dataset(
                calibration_folder(calibration_dir, model.input_shape[1]), calibration_images
            )
        else:
            config = run_data_config(checkpoint)
            if config is None:
                raise UsageError(
                    f"int8 TFLite needs calibration images: {run_dir} has no "
                    f"{DATA_CONFIG_FILE} naming the training data; pass a folder of "
                    "images (--calibration-dir) or leave out 'int8'."
                )
            kwargs["representative_data"] = representative_dataset(
                load_data(config).train, calibration_images
            )
    kwargs.setdefault("class_names", shipped_class_names(checkpoint))
    return export(
        model, base_dir, source=os.path.abspath(checkpoint), training_config=train_config, **kwargs
    )


def calibration_folder(directory, size):
    """Batches of the image files under ``directory`` (any layout) through the evaluation
    preprocessing, for int8 calibration."""
    paths, problems = expand_image_paths([directory])
    if not paths:
        raise UsageError(
            f"--calibration-dir {directory!r} holds no image files "
            f"({'; '.join(problems.values()) or 'empty'})."
        )
    dataset, _ = image_files_dataset(paths, size)
    return dataset


def run_data_config(checkpoint):
    """The ``DataConfig`` a checkpoint was trained with (``data_config.json`` beside it), without
    augmentation - its images go through the evaluation transform -, or ``None``."""
    saved = read_json(os.path.join(os.path.dirname(os.path.abspath(checkpoint)), DATA_CONFIG_FILE))
    if saved is None:
        return None
    fields = {f.name for f in dataclasses.fields(DataConfig)} - {"augment"}
    return DataConfig(augment=None, **{k: v for k, v in saved.items() if k in fields})


def write_manifest(directory, model, class_names=None, source=None, training_config=None):
    """Writes ``manifest.json`` describing every file already in ``directory``."""
    manifest = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "input": {
            "name": "images",
            "dtype": "float32",
            "shape": list(model.input_shape),
            "layout": "NHWC, RGB",
            "range": [0, 255],
            "note": "raw pixels; the model rescales them itself",
        },
        "output": {"name": "probabilities", "dtype": "float32", "classes": model.output_shape[-1]},
        "class_names": list(class_names) if class_names is not None else None,
        "source": source,
        # Lets verify tell the exported checkpoint from a later one written to the same path.
        "source_sha256": file_digest(source) if source and os.path.isfile(source) else None,
        "training_config": training_config,
        "versions": {
            "inception_keras": VERSION,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            **_optional_versions(),
        },
        "files": file_hashes(directory),
    }
    with open(os.path.join(directory, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)


def file_hashes(directory):
    """``{relative path: {"sha256", "bytes"}}`` for every file under ``directory`` but the
    manifest itself."""
    out = {}
    for root, _, files in os.walk(directory):
        for file in sorted(files):
            path = os.path.join(root, file)
            relative = os.path.relpath(path, directory)
            if relative == MANIFEST:
                continue
            out[relative] = {"sha256": file_digest(path), "bytes": os.path.getsize(path)}
    return dict(sorted(out.items()))


def _optional_versions():
    packages = ("tf2onnx", "onnx", "onnxruntime", "ai-edge-litert", "tensorflow-serving-api")
    return {package: installed_version(package) for package in packages}

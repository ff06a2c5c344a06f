"""SavedModel export for TF Serving, and a runner that loads the export back.

Layout written (TF Serving's model base path is ``base_dir/name``)::

    base_dir/name/<version>/saved_model.pb
                            variables/...
                            assets/class_names.txt                  (with class_names)
                            assets.extra/tf_serving_warmup_requests

Signatures:

* ``serving_default``: ``images`` float32 ``[batch, H, W, 3]``, raw RGB in [0, 255] (the model
  rescales itself) -> ``probabilities`` float32 ``[batch, classes]``, ``top_k_classes`` int32
  ``[batch, k]``, ``top_k_scores`` float32 ``[batch, k]`` and, with class names,
  ``top_k_labels`` string ``[batch, k]``; ``k = min(top_k, classes)``.
* ``serving_bytes``: ``image_bytes`` string ``[batch]`` of encoded JPEG/PNG/BMP/GIF -> the same
  outputs. The ``_bytes`` suffix makes TF Serving's REST API base64-decode ``{"b64": ...}`` values.
  Decoding, central crop and resize run in the graph through
  :func:`inception_keras.preprocessing.decode_for_eval`, the same code evaluation uses. An image
  over the byte or pixel limit (read from its header, before decoding) fails its request with
  ``InvalidArgumentError`` naming the limit instead of allocating.

Why ``tf.Module`` + ``tf.function`` rather than Keras' ``ExportArchive``: the export needs an
asset-backed lookup table, exact signature input/output names and control over which variable
objects are saved (``ExportArchive`` tracks Keras variables, which TF Serving's TF1-style loader
does not restore, see :class:`_ServingModule`); a plain ``tf.Module`` does all three directly.
"""

from __future__ import annotations

import numbers
import os
import shutil
import socket
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from inception_keras import preprocessing
from inception_keras.errors import UsageError
from inception_keras.export.serving import (
    INPUT_NAME,
    OUTPUT_NAME,
    SERVING_DEFAULT,
    without_table_initializer_warning,
)
from inception_keras.files import CLASS_NAMES_ASSET, move_into_place, rename_exclusive
from inception_keras.model import inference_model
from inception_keras.runners.names import BYTES_INPUT, SERVING_BYTES
from inception_keras.runners.saved_model import SavedModelRunner  # noqa: F401 (importable here too)

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# TF Serving loads only all-digit directory names, so anything starting with "." is invisible to it.
# A scratch folder is named after its owner, ".tmp-export-<host>-<pid>-<random>", so the next export
# can tell a killed export's leftovers from a live one's.
_TMP_PREFIX = ".tmp-export-"
# Older than this, a scratch folder is taken as abandoned whoever made it (a reused pid, another
# host sharing the directory, or a folder from before owners were recorded): no export takes a day.
STALE_SCRATCH_SECONDS = 24 * 3600


def export_saved_model(
    model,
    base_dir,
    name="googlenet",
    version=None,
    class_names=None,
    top_k=5,
    crop_fraction=preprocessing.DEFAULT_CROP_FRACTION,
    overwrite=False,
    before_publish=None,
    max_image_bytes=preprocessing.MAX_IMAGE_BYTES,
    max_image_pixels=preprocessing.MAX_IMAGE_PIXELS,
):
    """Exports the inference model of ``model`` as ``base_dir/name/<version>/`` for TF Serving.

    Args:
        model: a GoogLeNet ``keras.Model`` with softmax ``predictions`` and a fixed square input;
            aux heads, if any, are stripped (:func:`inception_keras.model.inference_model`).
        base_dir: directory holding one sub-directory per model name.
        name: model name (TF Serving's ``model_name``).
        version: positive integer; default the next free version (1 in an empty directory),
            claimed when the finished export is renamed into place, so concurrent exports get
            distinct versions.
        class_names: optional sequence of ``classes`` names, shipped as ``assets/class_names.txt``
            and mapped from the top-k ids into the ``top_k_labels`` output.
        top_k: number of top classes returned (capped at the number of classes).
        crop_fraction: central-crop fraction of the ``serving_bytes`` preprocessing.
        overwrite: replace an existing version (atomically) instead of raising. Without it an
            existing version is never replaced, even one another process publishes meanwhile.
        before_publish: optional ``callable(staged_dir)`` that adds files (other formats, a
            manifest) to the version before it is moved into place, so they appear with it.
        max_image_bytes, max_image_pixels: the ``serving_bytes`` signature refuses larger
            encoded images, or images whose header gives more pixels, before decoding them.

    Returns:
        The path of the version directory.

    Raises:
        ValueError: bad arguments, or ``version`` exists and ``overwrite`` is False. Nothing
            already in ``base_dir`` is changed or lost when an error occurs.
    """
    model = inference_model(model)
    image_size, classes = _check_model(model)
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
        raise UsageError(f"`top_k` must be a positive integer; got {top_k!r}.")
    if not 0 < crop_fraction <= 1:
        raise UsageError(f"`crop_fraction` must be in (0, 1]; got {crop_fraction!r}.")
    class_names = _check_class_names(class_names, classes)
    for label, limit in (
        ("max_image_bytes", max_image_bytes),
        ("max_image_pixels", max_image_pixels),
    ):
        if isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 1:
            raise UsageError(f"`{label}` must be a positive integer; got {limit!r}.")
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or os.sep in name
        or (os.altsep and os.altsep in name)
    ):
        raise UsageError(f"`name` must be a plain directory name; got {name!r}.")
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, numbers.Integral) or version < 1
    ):
        raise UsageError(f"`version` must be a positive integer or None; got {version!r}.")

    model_dir = os.path.join(os.fspath(base_dir), name)
    os.makedirs(model_dir, exist_ok=True)
    _remove_stale_scratch(model_dir)
    if version is not None and not overwrite:  # fail before the work; checked again at the end
        target = os.path.join(model_dir, str(int(version)))
        if os.path.exists(target):
            raise _version_exists(name, version, target)

    scratch = tempfile.mkdtemp(prefix=_scratch_prefix(), dir=model_dir)
    try:
        staged = os.path.join(scratch, "export")
        asset_path = None
        if class_names is not None:
            # The asset's file name inside assets/ is its base name, so write it as such.
            asset_path = os.path.join(scratch, CLASS_NAMES_ASSET)
            with open(asset_path, "w", encoding="utf-8") as f:
                f.write("".join(n + "\n" for n in class_names))
        module = _ServingModule(
            model,
            image_size,
            min(int(top_k), classes),
            crop_fraction,
            asset_path,
            classes,
            (int(max_image_bytes), int(max_image_pixels)),
        )
        with without_table_initializer_warning():
            tf.saved_model.save(module, staged, signatures=module.signatures())
        _write_warmup_requests(staged, name, image_size)
        if before_publish is not None:
            before_publish(staged)
        return _publish(staged, model_dir, name, version, overwrite, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _version_exists(name, version, target):
    return UsageError(
        f"Version {version} of {name!r} already exists at {target}; pass overwrite=True to "
        "replace it or another `version`."
    )


def _publish(staged, model_dir, name, version, overwrite, scratch):
    """Moves the finished export to its version directory and returns that directory.

    The version number is claimed by the rename itself, which fails if the directory exists: of
    two concurrent exports only one can take a number, and the other moves on to the next one.
    """
    if version is not None:
        target = os.path.join(model_dir, str(int(version)))
        if overwrite:
            move_into_place(staged, target, scratch)
        elif not rename_exclusive(staged, target):
            raise _version_exists(name, version, target)
        return target
    while True:
        # TF Serving's versions are the all-digit sub-directories; scratch folders never count.
        taken = (int(d) for d in os.listdir(model_dir) if d.isdigit())
        target = os.path.join(model_dir, str(max(taken, default=0) + 1))
        if rename_exclusive(staged, target):
            return target


def _scratch_prefix():
    return f"{_TMP_PREFIX}{socket.gethostname()}-{os.getpid()}-"


def _is_abandoned(path, name):
    """Whether the scratch folder ``path`` (named ``name``) belongs to no running export."""
    try:
        age = time.time() - os.lstat(path).st_mtime
    except FileNotFoundError:
        return False  # already gone: its owner finished or another export removed it
    if age > STALE_SCRATCH_SECONDS:
        return True
    owner = name[len(_TMP_PREFIX) :].rpartition("-")[0]  # drop mkdtemp's random suffix
    host, _, pid = owner.rpartition("-")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's, or an unknown owner: only its age can tell
    try:
        os.kill(int(pid), 0)  # signal 0 checks that the process exists, nothing is sent
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by another user
        return False
    return False


def _remove_stale_scratch(model_dir):
    """Deletes the scratch folders in ``model_dir`` left by exports that were killed (their
    process is gone, or they are older than ``STALE_SCRATCH_SECONDS``); a running export's folder
    is left alone."""
    for entry in os.scandir(model_dir):
        if entry.name.startswith(_TMP_PREFIX) and _is_abandoned(entry.path, entry.name):
            shutil.rmtree(entry.path, ignore_errors=True)


def _check_model(model):
    """Returns ``(image_size, classes)``; raises ValueError for models that cannot be exported."""
    try:
        head = model.get_layer("predictions")
    except ValueError:
        raise UsageError(
            "`model` has no `predictions` layer: export needs a classifier (include_top=True)."
        ) from None
    if getattr(head, "activation", None) is not keras.activations.softmax:
        raise UsageError(
            "`model` must end in a softmax (classifier_activation='softmax'): the export's "
            "`probabilities` output is the model's output."
        )
    _, height, width, channels = model.input_shape
    if height is None or height != width or channels != 3:
        raise UsageError(
            f"`model` must take a fixed square RGB input (the bytes signature resizes to it); got "
            f"input shape {model.input_shape}."
        )
    return int(height), int(model.output_shape[-1])


def _check_class_names(class_names, classes):
    if class_names is None:
        return None
    class_names = [str(n) for n in class_names]
    if len(class_names) != classes:
        raise UsageError(
            f"`class_names` has {len(class_names)} names but the model has {classes} classes."
        )
    bad = [n for n in class_names if "\n" in n or "\r" in n]
    if bad:
        raise UsageError(
            f"`class_names` must not contain line breaks (one name per asset line); got {bad}."
        )
    return class_names


class _ServingModule(tf.Module):
    """The model plus its serving functions; everything it tracks goes into the SavedModel."""

    def __init__(self, model, image_size, k, crop_fraction, class_names_path, classes, limits):
        super().__init__()
        # Track the tf.Variables inside the Keras variables, not the Keras model: Keras 3's variable
        # wrapper saves itself as a fresh copy ("Variable_N") that the TF1 loader TF Serving uses
        # restores, while the signatures read the inner variable, which then stays uninitialised
        # (keras-team/keras#20095, #19274; tf.saved_model.load is unaffected, TF Serving is not).
        # The model itself is only reached through the closures below, so it is not tracked.
        self.model_variables = [variable.value for variable in model.variables]
        self._call_model = lambda images: model(images, training=False)
        self._image_size = image_size
        self._k = k
        self._crop_fraction = crop_fraction
        self._limits = limits  # (max bytes, max pixels) of one encoded image
        self.class_names = None
        self.labels = None
        if class_names_path is not None:
            # Tracked Asset: the file is copied into assets/ and the table reads it from there at
            # load time, so the asset is the only copy of the names.
            self.class_names = tf.saved_model.Asset(class_names_path)
            self.labels = tf.lookup.StaticHashTable(
                tf.lookup.TextFileInitializer(
                    self.class_names,
                    tf.int64,
                    tf.lookup.TextFileIndex.LINE_NUMBER,
                    tf.string,
                    tf.lookup.TextFileIndex.WHOLE_LINE,
                    vocab_size=classes,
                ),
                default_value="",
            )
        self.serve_images = tf.function(
            self._serve_images,
            input_signature=[
                tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name=INPUT_NAME)
            ],
        )
        self.serve_bytes = tf.function(
            self._serve_bytes,
            input_signature=[tf.TensorSpec([None], tf.string, name=BYTES_INPUT)],
        )

    def signatures(self):
        return {
            SERVING_DEFAULT: self.serve_images.get_concrete_function(),
            SERVING_BYTES: self.serve_bytes.get_concrete_function(),
        }

    def _outputs(self, images):
        probabilities = self._call_model(images)
        scores, ids = tf.math.top_k(probabilities, k=self._k)
        outputs = {OUTPUT_NAME: probabilities, "top_k_classes": ids, "top_k_scores": scores}
        if self.labels is not None:
            outputs["top_k_labels"] = self.labels.lookup(tf.cast(ids, tf.int64))
        return outputs

    def _serve_images(self, images):
        return self._outputs(images)

    def _serve_bytes(self, image_bytes):
        size = self._image_size
        images = tf.map_fn(
            lambda encoded: preprocessing.decode_for_eval(
                encoded, size, self._crop_fraction, *self._limits
            ),
            image_bytes,
            fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32),
        )
        return self._outputs(images)


def _warmup_image(image_size):
    """A deterministic image-like uint8 picture (gradients), so warm-up exercises real values."""
    ramp = np.linspace(0, 255, image_size, dtype=np.float32)
    r, g = np.meshgrid(ramp, ramp[::-1])
    return np.stack([r, g, (r + g) / 2], axis=-1).astype(np.uint8)


def _write_warmup_requests(export_dir, name, image_size):
    """Writes ``assets.extra/tf_serving_warmup_requests``: one PredictRequest per signature.

    TF Serving replays these records when it loads the version, so the first client request does
    not pay for graph initialisation.
    """
    # Imported here: only the exporter needs TF Serving's protos.
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    image = _warmup_image(image_size)
    encoded = tf.io.encode_jpeg(image).numpy()
    requests = {
        SERVING_DEFAULT: {INPUT_NAME: tf.make_tensor_proto(image[None].astype(np.float32))},
        SERVING_BYTES: {BYTES_INPUT: tf.make_tensor_proto([encoded], dtype=tf.string)},
    }
    path = os.path.join(export_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for signature, inputs in requests.items():
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=name, signature_name=signature)
            )
            for key, proto in inputs.items():
                request.inputs[key].CopyFrom(proto)
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())

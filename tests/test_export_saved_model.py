"""Tests of inception_keras.export.saved_model: signatures, TF1/TF Serving loading, warm-up records,
versioning and interrupted exports. One small random-weight GoogLeNet (64x64, 5 classes) is shared.
"""

import hashlib
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

import inception_keras as ik
from inception_keras import preprocessing
from inception_keras.export import saved_model as sm

# Every test here trains, exports or starts processes: the slow tier.
pytestmark = pytest.mark.slow

SIZE, CLASSES = 64, 5
CLASS_NAMES = ["circle", "square", "triangle with space", "star", "ring"]
TOL = 1e-5


def picture(height, width, seed):
    """Image-like uint8 RGB: smooth colour blobs (upsampled coarse noise) plus fine noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (1, 6, 6, 3)).astype(np.float32)
    smooth = tf.image.resize(coarse, [height, width], method="bicubic")[0].numpy()
    return np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.uint8)


def batch(n, seed=0):
    return np.stack([picture(SIZE, SIZE, seed + i) for i in range(n)]).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    # With aux heads: the export must strip them itself.
    keras_model = ik.GoogLeNet(classes=CLASSES, input_shape=(SIZE, SIZE, 3), include_aux=True)
    return keras_model


@pytest.fixture(scope="module")
def reference(model):
    inference = ik.inference_model(model)
    return lambda images: inference(tf.constant(images), training=False).numpy()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    base = tmp_path_factory.mktemp("serving")
    return sm.export_saved_model(model, base, class_names=CLASS_NAMES, top_k=3)


def file_hash(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def dir_hashes(path):
    return {
        os.path.relpath(os.path.join(root, name), path): file_hash(os.path.join(root, name))
        for root, _, files in os.walk(path)
        for name in files
    }


def check_top_k(outputs, k):
    probabilities = outputs["probabilities"].numpy()
    ids, scores = outputs["top_k_classes"].numpy(), outputs["top_k_scores"].numpy()
    assert ids.dtype == np.int32 and ids.shape == (len(probabilities), k)
    expected = np.argsort(-probabilities, axis=1)[:, :k]
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(probabilities, ids, axis=1), atol=0)
    labels = [[label.decode() for label in row] for row in outputs["top_k_labels"].numpy()]
    assert labels == np.array(CLASS_NAMES)[ids].tolist()


def test_layout_and_class_names_asset(exported):
    assert os.path.basename(exported) == "1"
    assert os.path.basename(os.path.dirname(exported)) == "googlenet"
    assert sorted(os.listdir(os.path.dirname(exported))) == ["1"]  # no temp dir left behind
    with open(os.path.join(exported, "assets", sm.CLASS_NAMES_ASSET), encoding="utf-8") as f:
        assert f.read().splitlines() == CLASS_NAMES
    assert os.path.isfile(os.path.join(exported, sm.WARMUP_FILE))


def test_signatures_match_keras(exported, reference):
    loaded = tf.saved_model.load(exported)
    assert set(loaded.signatures) == {"serving_default", "serving_bytes"}

    images = batch(2)
    outputs = loaded.signatures["serving_default"](images=tf.constant(images))
    assert set(outputs) == {"probabilities", "top_k_classes", "top_k_scores", "top_k_labels"}
    assert np.abs(outputs["probabilities"].numpy() - reference(images)).max() <= TOL
    check_top_k(outputs, 3)

    # Non-square, not the model's size: the graph must crop and resize exactly like evaluation.
    png = tf.io.encode_png(picture(80, 96, seed=7)).numpy()
    jpeg = tf.io.encode_jpeg(picture(50, 40, seed=8)).numpy()
    outputs = loaded.signatures["serving_bytes"](image_bytes=tf.constant([png, jpeg]))
    preprocessed = np.stack([preprocessing.decode_for_eval(b, SIZE).numpy() for b in (png, jpeg)])
    assert np.abs(outputs["probabilities"].numpy() - reference(preprocessed)).max() <= TOL
    check_top_k(outputs, 3)


def test_signature_input_size_and_dynamic_batch(exported, reference):
    runner = sm.SavedModelRunner(exported)
    assert runner.input_shape == (None, SIZE, SIZE, 3)
    for n in (1, 3):
        images = batch(n, seed=10)
        probabilities = runner(images)
        assert probabilities.shape == (n, CLASSES)
        assert np.abs(probabilities - reference(images)).max() <= TOL
    png = tf.io.encode_png(picture(70, 70, seed=3)).numpy()
    expected = reference(preprocessing.decode_for_eval(png, SIZE).numpy()[None])
    assert np.abs(runner.predict_bytes([png]) - expected).max() <= TOL


def test_tf1_session_loader_like_tf_serving(exported, reference):
    images = batch(2, seed=20)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta_graph = tf.compat.v1.saved_model.loader.load(sess, ["serve"], exported)
        signature = meta_graph.signature_def["serving_default"]
        feed = {signature.inputs["images"].name: images}
        fetch = {key: signature.outputs[key].name for key in signature.outputs}
        outputs = sess.run(fetch, feed_dict=feed)
    assert np.abs(outputs["probabilities"] - reference(images)).max() <= TOL
    check_top_k({key: tf.constant(value) for key, value in outputs.items()}, 3)


def test_warmup_requests_parse_and_run(exported):
    loaded = tf.saved_model.load(exported)
    logs = [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(os.path.join(exported, sm.WARMUP_FILE))
    ]
    signatures = [log.predict_log.request.model_spec.signature_name for log in logs]
    assert sorted(signatures) == ["serving_bytes", "serving_default"]
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "googlenet"
        inputs = {key: tf.constant(tf.make_ndarray(proto)) for key, proto in request.inputs.items()}
        outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
        n = next(iter(inputs.values())).shape[0]
        assert outputs["probabilities"].shape == (n, CLASSES)
        np.testing.assert_allclose(outputs["probabilities"].numpy().sum(axis=1), 1.0, atol=1e-5)


def test_versioning_and_overwrite(model, tmp_path, monkeypatch):
    model_dir = tmp_path / "googlenet"
    first = sm.export_saved_model(model, tmp_path, class_names=CLASS_NAMES)
    second = sm.export_saved_model(model, tmp_path)
    assert (os.path.basename(first), os.path.basename(second)) == ("1", "2")
    assert not os.path.exists(os.path.join(second, "assets", sm.CLASS_NAMES_ASSET))

    before = dir_hashes(first)
    with pytest.raises(ValueError, match="already exists"):
        sm.export_saved_model(model, tmp_path, version=1)
    assert dir_hashes(first) == before

    # Once with the atomic exchange (Linux), once with the two-rename fallback.
    exchanged = []
    real_exchange = sm._exchange

    def spy(a, b):
        exchanged.append(real_exchange(a, b))
        return exchanged[-1]

    monkeypatch.setattr(sm, "_exchange", spy)
    for names in (CLASS_NAMES[::-1], CLASS_NAMES[1:] + CLASS_NAMES[:1]):
        assert (
            sm.export_saved_model(model, tmp_path, version=1, class_names=names, overwrite=True)
            == first
        )
        with open(os.path.join(first, "assets", sm.CLASS_NAMES_ASSET), encoding="utf-8") as f:
            assert f.read().splitlines() == names
        assert sorted(os.listdir(model_dir)) == ["1", "2"]
        monkeypatch.setattr(sm, "_exchange", lambda a, b: False)
    if sys.platform.startswith("linux"):
        assert exchanged == [True]


def test_interrupted_export_leaves_nothing(model, tmp_path, monkeypatch):
    first = sm.export_saved_model(model, tmp_path)
    before = dir_hashes(first)

    def fail(export_dir, *args):
        assert os.path.isfile(os.path.join(export_dir, "saved_model.pb"))  # the model was written
        raise OSError("disk full")

    monkeypatch.setattr(sm, "_write_warmup_requests", fail)
    for kwargs in ({}, {"version": 1, "overwrite": True}):
        with pytest.raises(OSError, match="disk full"):
            sm.export_saved_model(model, tmp_path, **kwargs)
        # No new version, no temp dir, version 1 untouched.
        assert os.listdir(tmp_path / "googlenet") == ["1"]
        assert dir_hashes(first) == before


@pytest.mark.parametrize("version", ["2", 1.0, True, 0, -1])
def test_bad_version(model, tmp_path, version):
    with pytest.raises(ValueError, match="`version`"):
        sm.export_saved_model(model, tmp_path, version=version)
    assert os.listdir(tmp_path) == []


def test_bad_arguments(model, tmp_path):
    with pytest.raises(ValueError, match="`class_names`"):
        sm.export_saved_model(model, tmp_path, class_names=CLASS_NAMES[:2])
    with pytest.raises(ValueError, match="`name`"):
        sm.export_saved_model(model, tmp_path, name="../elsewhere")
    with pytest.raises(ValueError, match="`top_k`"):
        sm.export_saved_model(model, tmp_path, top_k=0)
    logits = ik.GoogLeNet(classes=CLASSES, input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    with pytest.raises(ValueError, match="softmax"):
        sm.export_saved_model(logits, tmp_path)
    assert not os.path.exists(tmp_path / "googlenet")

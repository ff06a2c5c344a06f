"""Tests of inception_keras.export.saved_model: signatures, TF1/TF Serving loading, warm-up records,
versioning, interrupted and concurrent exports, the bytes signature's size limits. One small
random-weight GoogLeNet (64x64, 5 classes, its answers made image-dependent) is shared; the newer
tests use a tiny 8x8 classifier.
"""

import hashlib
import json
import os
import pathlib
import shutil
import socket
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from _classifiers import assert_image_dependent, spread_predictions
from _export_worker import tiny_model  # the model the concurrent-export processes write
from tensorflow_serving.apis import prediction_log_pb2

import inception_keras as ik
from inception_keras import files, preprocessing
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
    # Calibrated on images that include the ones test_signatures_match_keras checks.
    return spread_predictions(keras_model, batch(8))


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

    images = batch(4)
    outputs = loaded.signatures["serving_default"](images=tf.constant(images))
    assert set(outputs) == {"probabilities", "top_k_classes", "top_k_scores", "top_k_labels"}
    assert_image_dependent(reference(images), TOL)
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
    real_exchange = files.exchange

    def spy(a, b):
        exchanged.append(real_exchange(a, b))
        return exchanged[-1]

    monkeypatch.setattr(files, "exchange", spy)
    for names in (CLASS_NAMES[::-1], CLASS_NAMES[1:] + CLASS_NAMES[:1]):
        assert (
            sm.export_saved_model(model, tmp_path, version=1, class_names=names, overwrite=True)
            == first
        )
        with open(os.path.join(first, "assets", sm.CLASS_NAMES_ASSET), encoding="utf-8") as f:
            assert f.read().splitlines() == names
        assert sorted(os.listdir(model_dir)) == ["1", "2"]
        monkeypatch.setattr(files, "exchange", lambda a, b: False)
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


# --------------------------------------------------------------------------
# Bounded decoding in the bytes signature; concurrent and interrupted exports
# --------------------------------------------------------------------------
ROOT = pathlib.Path(__file__).resolve().parents[1]
EXPORT_WORKER = ROOT / "tests" / "_export_worker.py"


def test_bytes_signature_refuses_images_over_the_limits(tmp_path):
    tiny = tiny_model(0)
    default = tf.saved_model.load(sm.export_saved_model(tiny, tmp_path))
    lowered = tf.saved_model.load(sm.export_saved_model(tiny, tmp_path, max_image_pixels=63))
    png = tf.io.encode_png(picture(8, 8, seed=1)).numpy()  # 64 pixels
    smaller = tf.io.encode_png(picture(7, 9, seed=2)).numpy()  # 63 pixels
    # Claims 20000 x 20000 in its header: 1.2 GB as RGB if the decoder were let loose on it.
    huge = png[:16] + struct.pack(">II", 20000, 20000) + png[24:]

    def serve(loaded, *images):
        return loaded.signatures["serving_bytes"](image_bytes=tf.constant(images))

    assert serve(default, png, smaller)["probabilities"].shape == (2, 3)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="image is 20000x20000 pixels, over the limit of 64000000 pixels",
    ):
        serve(default, png, huge)
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="image is 8x8 pixels, over the limit of 63 pixels"
    ):
        serve(lowered, png)
    assert serve(lowered, smaller)["probabilities"].shape == (1, 3)
    with pytest.raises(ValueError, match="`max_image_bytes`"):
        sm.export_saved_model(tiny, tmp_path, max_image_bytes=0)


def test_concurrent_exports_take_distinct_versions(tmp_path):
    """Two processes export at once without a version: each gets its own, holding its model."""
    sync = tmp_path / "sync"
    sync.mkdir()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    # The subprocesses must import this checkout's package, whatever is installed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    logs = [open(tmp_path / f"export{seed}.log", "w+") for seed in (1, 2)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(EXPORT_WORKER), str(tmp_path), str(sync), str(seed)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for seed, log in zip((1, 2), logs)
    ]
    try:
        for proc in procs:
            proc.wait(timeout=600)
    finally:
        for proc in procs:  # leave no process behind (only those started here)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    results = []
    for proc, log in zip(procs, logs):
        log.seek(0)
        output = log.read()
        log.close()
        assert proc.returncode == 0, output[-3000:]
        results.append(json.loads(output.strip().splitlines()[-1]))

    assert sorted(os.path.basename(r["path"]) for r in results) == ["1", "2"]
    assert sorted(os.listdir(tmp_path / "googlenet")) == ["1", "2"]  # no scratch folder left
    probe = tf.fill([1, 8, 8, 3], 100.0)
    for result in results:  # each version holds the model of the process that reported it
        served = tf.saved_model.load(result["path"]).signatures["serving_default"](images=probe)
        np.testing.assert_allclose(
            served["probabilities"].numpy(), result["probabilities"], atol=1e-6
        )
    assert not np.allclose(results[0]["probabilities"], results[1]["probabilities"])


def test_explicit_version_is_never_replaced_without_overwrite(tmp_path, monkeypatch):
    tiny = tiny_model(0)
    # Another process publishes version 1 while this export is being written.
    other = sm.export_saved_model(tiny_model(1), tmp_path / "other")
    before = dir_hashes(other)

    def published_meanwhile(staged):
        shutil.copytree(other, tmp_path / "googlenet" / "1")

    with pytest.raises(ValueError, match="Version 1 of 'googlenet' already exists"):
        sm.export_saved_model(tiny, tmp_path, version=1, before_publish=published_meanwhile)
    assert dir_hashes(tmp_path / "googlenet" / "1") == before
    assert os.listdir(tmp_path / "googlenet") == ["1"]
    # Without a version the next free one is taken instead.
    path = sm.export_saved_model(tiny, tmp_path, before_publish=lambda staged: None)
    assert os.path.basename(path) == "2" and dir_hashes(tmp_path / "googlenet" / "1") == before


def test_stale_scratch_folders_are_removed_and_live_ones_kept(tmp_path):
    model_dir = tmp_path / "googlenet"
    model_dir.mkdir()
    host = socket.gethostname()
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(finished.stdout)  # a process that has exited
    dead = model_dir / f".tmp-export-{host}-{dead_pid}-abc123"
    live = model_dir / f".tmp-export-{host}-{os.getpid()}-def456"  # this very process
    remote = model_dir / ".tmp-export-elsewhere.example-1-ghi789"  # another machine's
    ancient = model_dir / ".tmp-export-oldstyle"  # no owner recorded, two days old
    for folder in (dead, live, remote, ancient):
        (folder / "export" / "variables").mkdir(parents=True)
        (folder / "export" / "saved_model.pb").write_bytes(b"half written")
    two_days_ago = time.time() - 2 * 86400
    os.utime(ancient, (two_days_ago, two_days_ago))

    path = sm.export_saved_model(tiny_model(0), tmp_path)
    assert os.path.basename(path) == "1"  # none of them was taken for a version
    assert sorted(os.listdir(model_dir)) == sorted(["1", live.name, remote.name])
    assert (live / "export" / "saved_model.pb").read_bytes() == b"half written"

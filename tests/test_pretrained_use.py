"""Published weights in use: weights="imagenet" through a local HTTP server (the download, the
hash check, the conversion cache, no network), `inception-keras convert`, class names in predict,
fine-tuning with frozen layers, export and verify of a converted model."""

import dataclasses
import functools
import http.server
import json
import os
import subprocess
import sys
import tarfile
import threading
import time

import caffe_reference as caffe
import keras
import numpy as np
import pytest
import slim_reference

import inception_keras as ik
from inception_keras import imagenet, pretrained
from inception_keras.files import file_digest
from inception_keras.pretrained import presets


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A folder laid out like the publishers': a random-weight caffemodel and slim archive."""
    root = tmp_path_factory.mktemp("published")
    caffe.write_caffemodel(
        str(root / "bvlc_googlenet.caffemodel"), caffe.random_weights(seed=7), "v1"
    )
    ckpt = tmp_path_factory.mktemp("ckpt")
    slim_reference.write_slim_checkpoint(str(ckpt / "inception_v1.ckpt"), seed=4)
    with tarfile.open(root / "inception_v1_2016_08_28.tar.gz", "w:gz") as archive:
        for name in os.listdir(ckpt):
            archive.add(ckpt / name, arcname=name)
    return root


@pytest.fixture()
def server(published):
    """An HTTP server on 127.0.0.1 serving ``published``; yields its URL."""
    handler = functools.partial(QuietHandler, directory=str(published))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.requests = []
    yield httpd
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        self.server.requests.append(self.path)


def sha1_of(path):
    return file_digest(str(path), "sha1")


@pytest.fixture()
def from_server(server, published, monkeypatch, tmp_path):
    """Presets pointing at the local server, the test file's SHA-1 as BVLC's, a fresh cache."""
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv(pretrained.MIRROR_ENV, url)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setitem(
        presets.WEIGHTS_PRESETS,
        "bvlc",
        dataclasses.replace(
            presets.WEIGHTS_PRESETS["bvlc"], sha1=sha1_of(published / "bvlc_googlenet.caffemodel")
        ),
    )
    return tmp_path / "keras" / "models"


@pytest.mark.slow
def test_imagenet_weights_download_once_then_load_from_the_cache(from_server, server, published):
    x = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    model = ik.GoogLeNet(weights="imagenet", include_aux=True)
    assert server.requests == ["/bvlc_googlenet.caffemodel"]
    direct = ik.GoogLeNet(weights=str(published / "bvlc_googlenet.caffemodel"), include_aux=True)
    for got, want in zip(model.predict(x, verbose=0), direct.predict(x, verbose=0)):
        np.testing.assert_array_equal(got, want)
    assert sorted(os.listdir(from_server)) == [
        "bvlc_googlenet.caffemodel",
        f"inception_keras-bvlc-v{pretrained.CONVERSION_VERSION}.npz",
    ]
    server.shutdown()  # the second call needs neither the network nor the caffemodel
    os.remove(from_server / "bvlc_googlenet.caffemodel")
    start = time.perf_counter()
    again = ik.GoogLeNet(weights="imagenet", include_top=False, pooling="avg")
    took = time.perf_counter() - start
    np.testing.assert_array_equal(
        again.get_layer("inception_5b_5x5").kernel.numpy(),
        model.get_layer("inception_5b_5x5").kernel.numpy(),
    )
    print(f"GoogLeNet(weights='imagenet') from the cache: {took:.1f} s including the build")


@pytest.mark.slow
def test_slim_preset_from_its_archive(from_server, server):
    model = ik.GoogLeNet(weights="imagenet", variant="slim")
    assert server.requests == ["/inception_v1_2016_08_28.tar.gz"]
    assert model.get_layer("inception_3a_5x5").kernel_size == (3, 3)
    assert model.output.shape[-1] == 1000


def test_a_wrong_hash_is_refused_and_nothing_is_kept(from_server, monkeypatch):
    monkeypatch.setitem(
        presets.WEIGHTS_PRESETS,
        "bvlc",
        dataclasses.replace(presets.WEIGHTS_PRESETS["bvlc"], sha1="0" * 40),
    )
    with pytest.raises(pretrained.DownloadError, match="SHA-1"):
        ik.GoogLeNet(weights="imagenet")
    assert not from_server.exists() or os.listdir(from_server) == []


@pytest.mark.slow
def test_no_network_is_one_line_exit_1_and_leaves_nothing(tmp_path):
    closed = http.server.HTTPServer(("127.0.0.1", 0), QuietHandler)
    port = closed.server_address[1]
    closed.server_close()  # nothing listens there now
    env = dict(
        os.environ,
        KERAS_HOME=str(tmp_path / "keras"),
        **{pretrained.MIRROR_ENV: f"http://127.0.0.1:{port}"},
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "inception_keras.cli",
            "convert",
            "bvlc",
            "--output",
            str(tmp_path / "bvlc.keras"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert f"http://127.0.0.1:{port}/bvlc_googlenet.caffemodel" in errors[0]
    assert "/path/to/bvlc_googlenet.caffemodel" in errors[0]  # how to pass a local file
    assert not (tmp_path / "bvlc.keras").exists()
    models = tmp_path / "keras" / "models"
    assert not models.exists() or os.listdir(models) == []


def test_bn_variant_has_no_imagenet_weights():
    with pytest.raises(ValueError, match="no published ImageNet weights.*'bn'"):
        ik.GoogLeNet(weights="imagenet", variant="bn")


@pytest.fixture(scope="module")
def converted(published, tmp_path_factory):
    """`inception-keras convert` of the caffemodel, through the CLI."""
    out = tmp_path_factory.mktemp("converted") / "bvlc.keras"
    result = run_convert(published / "bvlc_googlenet.caffemodel", out)
    assert result.returncode == 0, result.stderr
    return out


def run_convert(source, output):
    """`inception-keras convert SOURCE --output OUTPUT` in a fresh process."""
    command = [sys.executable, "-m", "inception_keras.cli", "convert", str(source)]
    return subprocess.run(command + ["--output", str(output)], capture_output=True, text=True)


@pytest.mark.slow
def test_convert_writes_a_safe_keras_model_with_imagenet_names(converted, published):
    model = keras.saving.load_model(converted, safe_mode=True)
    assert model.output_names == ["predictions", "aux1", "aux2"]
    direct = ik.GoogLeNet(weights=str(published / "bvlc_googlenet.caffemodel"), include_aux=True)
    for a, b in zip(model.weights, direct.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    metadata = json.loads(converted.with_suffix(".json").read_text())
    assert metadata["class_names"][0] == "tench" and len(metadata["class_names"]) == 1000
    assert metadata["variant"] == "paper" and metadata["aux_heads"] is True
    # Refuses to overwrite without --overwrite, and the file stays as it was.
    before = converted.read_bytes()
    result = run_convert(published / "bvlc_googlenet.caffemodel", converted)
    assert result.returncode == 2 and "--overwrite" in result.stderr
    assert converted.read_bytes() == before


@pytest.mark.slow
def test_predict_prints_imagenet_names(converted, tmp_path):
    import tensorflow as tf

    rng = np.random.default_rng(1)
    for i in range(2):
        pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8).repeat(32, 0).repeat(32, 1)
        (tmp_path / f"photo{i}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "inception_keras.cli",
            "predict",
            str(tmp_path),
            "--model",
            str(converted),
            "--json",
            "--top-k",
            "3",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    names = imagenet.class_names()
    predictions = json.loads(result.stdout)["predictions"]
    assert len(predictions) == 2
    for prediction in predictions:
        for entry in prediction["top_k"]:
            assert entry["label"] == names[entry["class_id"]]  # a name, not an id


@pytest.mark.slow
def test_fine_tuning_freezes_up_to_the_named_block(published, tmp_path):
    source = str(published / "bvlc_googlenet.caffemodel")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (16, 64, 64, 3)).astype("float32")
    y = rng.integers(0, 3, 16)
    import tensorflow as tf

    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    config = ik.TrainConfig(
        weights=source,
        freeze_until="inception_5b",
        image_size=64,
        epochs=1,
        output_dir=str(tmp_path / "run"),
        recipe="modern",
    )
    assert config.variant == "paper"  # from the weights
    result = ik.fit(config, train, train, num_classes=3)
    reference = pretrained.caffe.convert(source)
    model = result.model
    for name in ("conv1", "inception_3a_5x5", "inception_5b_pool_proj"):
        for got, want in zip(model.get_layer(name).get_weights(), reference[name]):
            np.testing.assert_array_equal(got, want)
    # The classifier is new (3 classes) and trained: it moved from its initial values.
    assert model.get_layer("fc").kernel.shape == (1024, 3)
    assert model.get_layer("fc").trainable and not model.get_layer("inception_5b_1x1").trainable


@pytest.mark.slow
def test_export_and_verify_a_converted_model(published, tmp_path):
    """A converted model has no training data beside it: int8 calibrates on a folder of images,
    and the export carries the ImageNet class names."""
    import tensorflow as tf

    from inception_keras.convert import convert
    from inception_keras.export import export_checkpoint
    from inception_keras.export.verify import verify

    checkpoint = convert(str(published / "inception_v1_2016_08_28.tar.gz"), tmp_path / "slim.keras")
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(2)
    for i in range(6):
        pixels = rng.integers(0, 256, (7, 7, 3), dtype=np.uint8).repeat(40, 0).repeat(40, 1)
        (photos / f"{i}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    version = export_checkpoint(
        checkpoint,
        str(tmp_path / "models"),
        formats=["saved_model", "tflite"],
        tflite_quantizations=["float32", "int8"],
        calibration_dir=str(photos),
        calibration_images=6,
    )
    manifest = json.loads((tmp_path / "models" / "googlenet" / "1" / "manifest.json").read_text())
    assert manifest["class_names"] == list(imagenet.class_names())
    report = verify(version, images=[str(photos)], latency_runs=1)
    rows = {row.file: row for row in report.rows}
    assert (
        rows["googlenet_float32.tflite"].passed and rows["googlenet_float32.tflite"].max_diff < 1e-5
    )
    assert not report.file_problems
    # Without a folder and without training data, int8 is refused with the way out named.
    with pytest.raises(ValueError, match="--calibration-dir"):
        export_checkpoint(
            checkpoint, str(tmp_path / "other"), formats=["tflite"], tflite_quantizations=["int8"]
        )

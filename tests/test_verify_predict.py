"""verify and predict: every artefact of one export, each in its own runtime."""

import hashlib
import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from test_main_job import ARTEFACTS  # the files of the main job's export, shared here

import inception_keras as ik
from inception_keras import shapes
from inception_keras.cli import main
from inception_keras.export import MANIFEST, write_manifest
from inception_keras.export.saved_model import SavedModelRunner
from inception_keras.export.tflite import export_tflite
from inception_keras.export.verify import Tolerances, check_files, verification_images, verify
from inception_keras.predict import predict
from inception_keras.recipes import PRESETS
from inception_keras.runners import shipped_class_names

# Every test here trains, exports or starts processes: the slow tier.
pytestmark = pytest.mark.slow

SIZE = PRESETS["quickstart"]["image_size"]


@pytest.fixture(scope="module")
def exported(quickstart_run, tmp_path_factory):
    """The main job's checkpoint (its train_config.json names the classes) and its export of
    every format, which other test files share (tests/conftest.py): a test that changes the
    export works on a copy."""
    checkpoint = quickstart_run.checkpoint
    return {
        "model": keras.saving.load_model(checkpoint, safe_mode=True),
        "checkpoint": checkpoint,
        "data_dir": quickstart_run.data_dir,
        "version": quickstart_run.export,
        "images": shapes.write_images(tmp_path_factory.mktemp("images"), count=6, image_size=48),
    }


def copy_version(exported, tmp_path):
    target = tmp_path / "1"
    shutil.copytree(exported["version"], target)
    return target


def test_verify_passes_for_every_artefact_against_the_checkpoint(exported, capsys):
    # The default tolerances, on a model that has learned: the tolerance rules themselves are
    # tested on exact numbers below.
    report = verify(exported["version"], max_images=32, latency_runs=2)
    assert report.passed and not report.file_problems, report.format()
    assert report.reference == str(exported["checkpoint"])
    # The images the run was validated on, named by its data_config.json.
    assert report.num_images == 32 and report.images == "shapes/64px (validation split)"
    files = [row.file for row in report.rows]
    assert files[0] == str(exported["checkpoint"]) and report.rows[0].passed is None
    assert set(files[1:]) == {"saved_model.pb, variables/", *ARTEFACTS[1:]}
    for row in report.rows[1:]:
        assert row.passed and row.bytes > 0 and row.latency_ms > 0, row
    by_file = {row.file: row for row in report.rows}
    assert by_file["googlenet.onnx"].max_diff <= 1e-5
    assert by_file["googlenet_int8.tflite"].requirement == "top-1 agree >= 95%"
    assert by_file["googlenet_float16.tflite"].requirement == "top-1 agree >= 99%"
    # The reference's accuracy is the Keras model's own on those images, whose labels are the
    # split's as tensorflow-datasets reads it.
    images, labels, _ = verification_images(SIZE, limit=32, source=str(exported["checkpoint"]))
    split = tfds.load(
        "shapes/64px", split="validation", data_dir=str(exported["data_dir"]), shuffle_files=False
    )
    assert labels.tolist() == [int(example["label"]) for example in split.take(32)]
    probabilities = exported["model"].predict(images, verbose=0)[0]
    assert report.rows[0].accuracy == pytest.approx(np.mean(probabilities.argmax(-1) == labels))
    assert report.rows[0].accuracy > 0.9  # it has learned
    # The int8 file is about a quarter of the float32 one.
    assert by_file["googlenet_int8.tflite"].bytes < by_file["googlenet_float32.tflite"].bytes / 3

    command = ["verify", str(exported["version"]), "--max-images", "16", "--latency-runs", "1"]
    assert main([*command, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["passed"] and printed["num_images"] == 16 and len(printed["rows"]) == 7


class FakeRunner:
    """Returns fixed probabilities, like a runtime that computes them."""

    def __init__(self, outputs):
        self.outputs, self.start = outputs, 0

    def __call__(self, images):
        out = self.outputs[self.start : self.start + len(images)]
        self.start = (self.start + len(images)) % len(self.outputs)
        return out


@pytest.mark.parametrize(
    "kind, change, passes",
    [
        ("float32", 5e-6, True),
        ("float32", 2e-5, False),
        ("float16", 1, True),
        ("float16", 2, False),  # images whose top-1 class flips, of 100
        ("int8", 5, True),
        ("int8", 6, False),
    ],
)
def test_default_tolerances(tmp_path, kind, change, passes):
    from inception_keras.export.verify import _row

    rng = np.random.default_rng(0)
    expected = rng.dirichlet(np.ones(8), 100).astype(np.float32)
    got = expected.copy()
    if kind == "float32":
        got[0, 0] += change
    else:
        for i in range(change):  # move the top class's mass to another class
            top = expected[i].argmax()
            got[i, top], got[i, (top + 1) % 8] = expected[i, (top + 1) % 8], expected[i, top]
    artefact = tmp_path / "m.tflite"
    artefact.write_bytes(b"x")
    row = _row(
        "x",
        str(artefact),
        str(tmp_path),
        FakeRunner(got),
        np.zeros((100, 1, 1, 3)),
        None,
        expected,
        1,
        kind,
        Tolerances(),
    )
    assert row.passed is passes, row
    assert row.agreement == pytest.approx(1 - (0 if kind == "float32" else change / 100))


def test_verify_fails_on_an_artefact_from_another_model(exported, tmp_path, capsys):
    version = copy_version(exported, tmp_path)
    other = ik.GoogLeNet(
        input_shape=(SIZE, SIZE, 3), classes=len(shapes.CLASS_NAMES), variant="bn", weights=None
    )
    os.remove(version / "googlenet_float32.tflite")
    export_tflite(other, version / "googlenet_float32.tflite")
    write_manifest(
        str(version),
        ik.inference_model(exported["model"]),
        shapes.CLASS_NAMES,
        source=str(exported["checkpoint"]),
    )  # hashes fine: only the numbers are wrong
    report = verify(version, max_images=16, latency_runs=1)
    failed = [row.file for row in report.rows if row.passed is False]
    assert failed == ["googlenet_float32.tflite"] and not report.file_problems, report.format()
    assert not report.passed

    assert main(["verify", str(version), "--max-images", "16", "--latency-runs", "1"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "googlenet_float32.tflite" in out


def test_verify_checks_the_manifest_hashes(exported, tmp_path):
    version = copy_version(exported, tmp_path)
    assert check_files(version) == []
    with open(version / "googlenet.onnx", "ab") as f:
        f.write(b"\0")
    (version / "notes.txt").write_text("added later")
    os.remove(version / "googlenet_float16.tflite")
    problems = check_files(version)
    assert any("googlenet.onnx has changed" in p for p in problems)
    assert any("googlenet_float16.tflite is listed but missing" in p for p in problems)
    assert any("notes.txt is not listed" in p for p in problems)
    os.remove(version / MANIFEST)
    assert check_files(version) == ["missing, so the files' hashes cannot be checked"]


def test_verify_runs_given_images_and_reports_bad_input(exported, tmp_path, capsys):
    report = verify(
        exported["version"],
        images=exported["images"][:3],
        max_images=8,
        latency_runs=1,
    )
    assert report.num_images == 3 and report.passed
    assert all(row.accuracy is None for row in report.rows)  # files carry no labels
    assert main(["verify", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["verify", str(exported["version"]), "--images", str(tmp_path / "gone.png")]) == 2
    assert "gone.png: no such file" in capsys.readouterr().err


def test_verify_holds_the_manifests_class_names_to_the_savedmodel_and_the_reference(
    exported, tmp_path
):
    version = copy_version(exported, tmp_path)
    report = verify(version, max_images=4, latency_runs=1)
    assert report.passed and report.name_problems == []
    assert report.reference == str(exported["checkpoint"])
    assert "the checkpoint the manifest names" in report.reference_reason
    # Reversed names in the manifest (not covered by its hashes): every label would be wrong.
    manifest = json.loads((version / MANIFEST).read_text())
    manifest["class_names"].reverse()
    (version / MANIFEST).write_text(json.dumps(manifest))
    report = verify(version, max_images=4, latency_runs=1)
    assert not report.passed
    assert len(report.name_problems) == 2  # against the SavedModel's asset and the checkpoint
    assert "class 0: 'crescent' vs 'circle'" in report.name_problems[0]
    assert "FAILED" in report.format() and "class names: manifest.json" in report.format()
    # A source that is gone: the SavedModel stands in, and the report says why.
    manifest["class_names"].reverse()
    manifest["source"] = str(tmp_path / "gone.keras")
    (version / MANIFEST).write_text(json.dumps(manifest))
    report = verify(version, max_images=4, latency_runs=1)
    assert report.passed and report.reference == str(version)
    assert "gone.keras' is gone; the SavedModel stands in" in report.reference_reason


def test_verify_does_not_take_a_replaced_source_checkpoint_as_the_reference(exported, tmp_path):
    # The manifest's source path now holds another model (a later run into the same directory):
    # compared with it every artefact would fail; verify notices by the sha256 the manifest
    # recorded and lets the SavedModel stand in.
    version = copy_version(exported, tmp_path)
    manifest = json.loads((version / MANIFEST).read_text())
    assert (
        manifest["source_sha256"] == hashlib.sha256(exported["checkpoint"].read_bytes()).hexdigest()
    )
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(exported["checkpoint"].parent / "train_config.json", run)
    moved = run / "best.keras"
    shutil.copy(exported["checkpoint"], moved)
    manifest["source"] = str(moved)
    (version / MANIFEST).write_text(json.dumps(manifest))
    report = verify(version, max_images=4, latency_runs=1)
    assert report.reference == str(moved) and "sha256" not in report.reference_reason

    keras.utils.set_random_seed(1)
    ik.GoogLeNet(
        input_shape=(SIZE, SIZE, 3), classes=len(shapes.CLASS_NAMES), include_aux=True, variant="bn"
    ).save(moved)
    against_new = verify(version, max_images=4, latency_runs=1, reference=str(moved))
    assert not against_new.passed  # the oracle: this file really is another model
    report = verify(version, max_images=4, latency_runs=1)
    assert report.passed and report.reference == str(version)
    assert (
        "best.keras' has changed since the export (sha256 differs); the SavedModel stands in"
        in (report.reference_reason)
    )


def test_every_artefact_finds_its_class_names(exported, tmp_path):
    version = exported["version"]
    for path in (
        exported["checkpoint"],
        version,
        version / "googlenet.onnx",
        version / "googlenet_int8.tflite",
    ):
        assert shipped_class_names(path) == shapes.CLASS_NAMES, path
    # Without the manifest the SavedModel still has its asset; an .onnx on its own has no names.
    bare = copy_version(exported, tmp_path)
    os.remove(bare / MANIFEST)
    assert shipped_class_names(bare) == shapes.CLASS_NAMES
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(version / "googlenet.onnx", alone)
    assert shipped_class_names(alone / "googlenet.onnx") is None
    assert predict(alone / "googlenet.onnx", [exported["images"][0]]).predictions[0].labels[0] in [
        str(i) for i in range(len(shapes.CLASS_NAMES))
    ]  # ids as labels


@pytest.mark.parametrize(
    "artefact", [None, ".", "googlenet.onnx", "googlenet_float32.tflite", "googlenet_int8.tflite"]
)
def test_predict_with_any_artefact_uses_the_shared_preprocessing(exported, artefact):
    model = exported["checkpoint"] if artefact is None else exported["version"] / artefact
    result = predict(model, exported["images"], top_k=3)
    assert not result.errors
    assert [p.path for p in result.predictions] == exported["images"]
    # The SavedModel's in-graph bytes signature (decode, central crop, resize) is the reference.
    encoded = [open(path, "rb").read() for path in exported["images"]]
    expected = SavedModelRunner(exported["version"]).predict_bytes(encoded)
    tolerance = 0.05 if artefact == "googlenet_int8.tflite" else 1e-5
    for prediction, row in zip(result.predictions, expected):
        assert len(prediction.class_ids) == 3
        assert prediction.labels == [shapes.CLASS_NAMES[i] for i in prediction.class_ids]
        np.testing.assert_allclose(
            prediction.probabilities, row[prediction.class_ids], atol=tolerance
        )
        assert prediction.probabilities == sorted(prediction.probabilities, reverse=True)
        if tolerance < 1e-3:
            assert prediction.class_ids[0] == int(np.argmax(row))


def test_predict_reports_bad_files_and_still_predicts_the_others(exported, tmp_path, capsys):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("this is text")
    (tmp_path / "empty").mkdir()
    good = exported["images"][:2]
    inputs = [
        good[0],
        str(not_an_image),
        str(tmp_path / "missing.jpg"),
        str(tmp_path / "empty"),
        good[1],
    ]
    model = str(exported["version"] / "googlenet_float32.tflite")
    assert main(["predict", *inputs, "--model", model, "--top-k", "2", "--json"]) == 1
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert [p["path"] for p in printed["predictions"]] == good
    assert [len(p["top_k"]) for p in printed["predictions"]] == [2, 2]
    assert printed["predictions"][0]["top_k"][0]["label"] in shapes.CLASS_NAMES
    errors = {e["path"]: e["error"] for e in printed["errors"]}
    assert list(errors) == inputs[1:4]  # in input order
    assert "decoded as an image" in errors[str(not_an_image)]
    assert errors[str(tmp_path / "missing.jpg")] == "no such file"
    assert "no images" in errors[str(tmp_path / "empty")]
    for path in inputs[1:4]:
        assert path in captured.err
    assert "Traceback" not in captured.err

    # A folder is expanded; plain text output names each image and its ranked labels.
    assert main(["predict", os.path.dirname(good[0]), "--model", model, "--top-k", "1"]) == 0
    out = capsys.readouterr().out
    for path in exported["images"]:
        assert path in out
    assert out.count("  1. ") == len(exported["images"])


def test_predict_rejects_a_bad_model_or_top_k(exported, tmp_path, capsys):
    assert main(["predict", exported["images"][0], "--model", str(tmp_path / "m.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ValueError, match="top_k"):
        predict(exported["checkpoint"], exported["images"], top_k=0)


def test_predict_with_a_plain_callable_runner(tmp_path):
    """Any object with ``input_shape``, ``num_classes`` and ``__call__`` works, ``path`` or not."""

    class MeanBrightness:
        input_shape, num_classes = (None, 32, 32, 3), 2

        def __call__(self, images):
            bright = images.mean(axis=(1, 2, 3)) / 255
            return np.stack([1 - bright, bright], axis=-1)

    # Flat grey images: every crop and resize keeps the grey level, so the answer is known.
    expected = {51: ("0", 0.8), 204: ("1", 0.8), 255: ("1", 1.0)}
    for grey in expected:
        image = tf.fill([40, 60, 3], tf.constant(grey, tf.uint8))
        tf.io.write_file(str(tmp_path / f"grey_{grey}.png"), tf.io.encode_png(image))
    result = predict(MeanBrightness(), [tmp_path], top_k=1)
    assert result.model == "MeanBrightness" and not result.errors
    got = {
        int(os.path.basename(p.path)[5:-4]): (p.labels[0], p.probabilities[0])
        for p in result.predictions
    }
    assert got.keys() == expected.keys()
    for grey, (label, probability) in expected.items():
        assert got[grey][0] == label and got[grey][1] == pytest.approx(probability, abs=1e-6)

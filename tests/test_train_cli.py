"""The train and evaluate commands end to end, on the built-in shapes set (smoke size)."""

import hashlib
import json
import os
import pathlib
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
from _pictures import curves_pixels, written_curves
from matplotlib.image import imread

from inception_keras.cli import main
from inception_keras.confusion import confused_pairs, read_csv
from inception_keras.data import DataConfig, load_data
from inception_keras.training import read_history

HERE = pathlib.Path(__file__).parent

# Every test here trains, exports or starts processes: the slow tier.
pytestmark = pytest.mark.slow

EPOCHS = 3


def train_command(data_dir, output_dir):
    return [
        sys.executable,
        "-m",
        "inception_keras.cli",
        "train",
        "--dataset",
        "shapes/smoke",
        "--data-dir",
        str(data_dir),
        "--variant",
        "bn",
        "--image-size",
        "32",
        "--batch-size",
        "64",
        "--epochs",
        str(EPOCHS),
        "--recipe",
        "modern",
        "--ema-momentum",
        "0.9",
        "--output-dir",
        str(output_dir),
    ]


@pytest.fixture(scope="module")
def data_dir(shapes_data_dir):
    return shapes_data_dir


def run_killed(data_dir, out, kill=None):
    command = [sys.executable, str(HERE / "_killed_run.py"), str(data_dir), str(out)]
    return subprocess.run(command + ([kill] if kill else []), capture_output=True, text=True)


@pytest.fixture(scope="module")
def resumed_run(data_dir, tmp_path_factory):
    """A run killed twice inside a file write, then run to its end: ``(output dir, outputs,
    (history.csv, curves.png) after each kill)``."""
    out = tmp_path_factory.mktemp("resumed") / "run"
    # Killed while writing the resume backup after epoch 2: the backup still says 1 epoch is
    # done, history.csv already has epoch 2's row.
    first = run_killed(data_dir, out, "save_weights:2")
    after_first = written_curves(out)
    # Resumed at epoch 2 (its first save rewrites epoch 1's last.keras from the backup) and
    # killed while writing epoch 2's last.keras: the backup counts epoch 2 as done, so its
    # checkpoints are written when the third run starts.
    second = run_killed(data_dir, out, "save:2")
    after_second = written_curves(out)
    third = run_killed(data_dir, out)
    return out, (first, second, third), (after_first, after_second)


def test_a_run_killed_inside_its_writes_resumes_where_it_stopped(resumed_run, data_dir):
    out, (first, second, third), after_kills = resumed_run
    assert first.returncode == second.returncode == -signal.SIGKILL, first.stderr + second.stderr
    assert third.returncode == 0, third.stdout + third.stderr
    assert f"Epoch 2/{EPOCHS}" in second.stdout and "Epoch 1/" not in second.stdout
    assert f"Epoch 3/{EPOCHS}" in third.stdout and "Epoch 2/" not in third.stdout
    # Every epoch once in the log, the killed ones re-run.
    history = read_history(out / "history.csv")
    assert history["epoch"] == [float(e) for e in range(EPOCHS)]
    assert not (out / "backup").exists()
    assert not [name for name in os.listdir(out) if name.startswith(".")]  # no temporary files
    # Where an uninterrupted run ends: all epochs' optimizer steps, weights and state restored.
    last = keras.saving.load_model(out / "last.keras", safe_mode=True)
    assert int(last.optimizer.iterations) == EPOCHS * -(-512 // 64)
    # best.keras scores what the summary and best_score.json say: evaluated again here.
    best_score = json.loads((out / "best_score.json").read_text())
    best = keras.saving.load_model(out / "best.keras", safe_mode=True)
    data = load_data(
        DataConfig(dataset="shapes/smoke", data_dir=str(data_dir), image_size=32, batch_size=64)
    )
    hits = total = 0
    for images, labels in data.validation:
        predicted = np.argmax(best.predict_on_batch(images)[0], axis=-1)
        hits, total = hits + int(np.sum(predicted == labels.numpy())), total + len(labels)
    assert total == 128
    assert hits / total == pytest.approx(best_score["val_predictions_top1"], abs=1e-6)
    assert best_score["val_predictions_top1"] == max(history["val_predictions_top1"])
    assert f"best validation top-1 {hits / total:.2%}" in third.stdout
    # curves.png is drawn before the backup is written, from history.csv: after each kill it
    # shows every epoch history.csv holds (the second process's curve continues the first's),
    # and at the end all of them.
    for rows, picture in after_kills:
        assert rows["epoch"] == [0.0, 1.0]
        np.testing.assert_array_equal(picture, curves_pixels(rows, out))
    np.testing.assert_array_equal(imread(out / "curves.png"), curves_pixels(history, out))


def test_the_resumed_checkpoint_exports_and_evaluates(resumed_run, data_dir, tmp_path, capsys):
    out = resumed_run[0]
    # The best checkpoint in each runtime's format (the main job's test exports every one), then
    # checkpoint and artefacts evaluated alike.
    export = ["export", "--model", str(out / "best.keras"), "--output-dir", str(tmp_path / "sm")]
    assert main([*export, "--tflite", "float32"]) == 0
    version = tmp_path / "sm" / "googlenet" / "1"
    manifest = json.loads((version / "manifest.json").read_text())
    assert not list(version.glob("*int8*")) and not list(version.glob("*float16*"))
    for name in ("saved_model.pb", "googlenet_float32.tflite", "googlenet.onnx"):
        entry = manifest["files"][name]
        assert entry["bytes"] == (version / name).stat().st_size
        assert entry["sha256"] == hashlib.sha256((version / name).read_bytes()).hexdigest()
    assert manifest["class_names"][:2] == ["circle", "ring"]
    assert manifest["training_config"]["epochs"] == EPOCHS
    assert manifest["source"].endswith("best.keras")
    capsys.readouterr()

    scores = {}
    runs = [
        (out / "best.keras", "1"),
        (out / "best.keras", "10"),
        (version, "1"),
        (version / "googlenet_float32.tflite", "1"),
        (version / "googlenet.onnx", "1"),
    ]
    confusion = tmp_path / "confusion.png"
    for model, crops in runs:
        with_confusion = (model.name, crops) == ("best.keras", "1")
        code = main(
            [
                "evaluate",
                "--model",
                str(model),
                "--dataset",
                "shapes/smoke",
                "--data-dir",
                str(data_dir),
                "--crops",
                crops,
            ]
            + (["--confusion", str(confusion)] if with_confusion else [])
        )
        assert code == 0
        printed = capsys.readouterr().out
        assert f"128 images, {crops} crop(s) each: top-1" in printed
        scores[model.name, crops] = printed.split("top-1")[1].split(", loss")[0]
        if with_confusion:
            confusion_output = printed
    for model, crops in runs[2:]:  # every float32 artefact scores like its checkpoint
        assert scores[model.name, crops] == scores["best.keras", "1"], model.name

    # The confusion matrix is that of the checkpoint's own answers on the validation split.
    matrix, names = read_csv(tmp_path / "confusion.csv")
    assert names == ["circle", "ring", "triangle", "square", "hexagon", "star", "cross", "crescent"]
    best = keras.saving.load_model(out / "best.keras", safe_mode=True)
    data = load_data(
        DataConfig(dataset="shapes/smoke", data_dir=str(data_dir), image_size=32, batch_size=64)
    )
    expected = np.zeros((8, 8), np.int64)
    for images, labels in data.validation:
        predicted = np.argmax(best.predict_on_batch(images)[0], axis=-1)
        np.add.at(expected, (labels.numpy(), predicted), 1)
    np.testing.assert_array_equal(matrix, expected)
    assert f"top-1 {np.trace(matrix) / 128:.2%}" in confusion_output
    listed = confusion_output.split("share of the true class):\n")[1].split("Confusion matrix:")[0]
    mistakes = np.count_nonzero(matrix - np.diag(np.diag(matrix)))
    assert listed.splitlines() == ["  " + p.format(names) for p in confused_pairs(matrix)]
    assert len(listed.splitlines()) == min(10, mistakes) > 0
    assert imread(confusion).ndim == 3


def test_train_stops_before_training_on_a_bad_source(tmp_path, capsys):
    code = main(
        ["train", "--dataset", str(tmp_path / "missing"), "--output-dir", str(tmp_path / "o")]
    )
    assert code == 2
    assert "missing" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def _configs_from_cli(monkeypatch, argv):
    """The (TrainConfig, DataConfig) that ``inception-keras train ARGV`` would train with."""
    import inception_keras.training as training

    seen = {}

    class Result:
        def summary(self):
            return "ok"

    def fake_train(preset=None, **options):  # the CLI's mapping only
        seen["configs"] = training.run_configs(preset, **options)
        return Result()

    monkeypatch.setattr(training, "train", fake_train)
    assert main(["train", *argv]) == 0
    return seen["configs"]


def test_preset_sets_defaults_and_flags_override(monkeypatch):
    config, data = _configs_from_cli(
        monkeypatch, ["--preset", "quickstart", "--variant", "paper", "--learning-rate", "1e-3"]
    )
    assert (config.variant, config.learning_rate) == ("paper", 1e-3)  # flags win
    assert (config.image_size, config.epochs, config.recipe, config.ema_momentum) == (
        64,
        4,
        "modern",
        0.99,
    )
    assert (data.dataset, data.batch_size, data.cache, data.image_size) == (
        "shapes/64px",
        32,
        True,
        64,
    )
    assert data.augment is None
    assert config.weight_decay == 0.05  # the modern recipe's, not the paper's 0


def test_every_data_and_augmentation_option_is_a_flag(monkeypatch, tmp_path):
    config, data = _configs_from_cli(
        monkeypatch,
        [
            "--area-range", "0.2", "0.9",
            "--no-flip",
            "--resize-methods", "bilinear", "area",
            "--cache-dir", str(tmp_path),
            "--steps-per-epoch", "7",
            "--image-size", "96",
        ],
    )  # fmt: skip
    assert data.augment.area_range == (0.2, 0.9) and data.augment.flip is False
    assert data.augment.resize_methods == ("bilinear", "area")
    assert data.augment.hue_delta == 0.2  # not given: AugmentConfig's default
    assert (data.cache, data.cache_dir) == (True, str(tmp_path))
    assert (config.steps_per_epoch, config.image_size, data.image_size) == (7, 96, 96)
    # The former spelling of --area-range MIN 1.
    _, data = _configs_from_cli(monkeypatch, ["--min-crop-area", "0.3"])
    assert data.augment.area_range == (0.3, 1.0)
    _, data = _configs_from_cli(monkeypatch, ["--no-augment"])
    assert data.augment is None
    # The quickstart preset trains without augmentation; --augment brings it back.
    _, data = _configs_from_cli(
        monkeypatch, ["--preset", "quickstart", "--augment", "--area-range", "0.5", "1"]
    )
    assert data.augment.area_range == (0.5, 1.0) and data.augment.flip is True


def test_augmentation_options_with_augmentation_off_are_refused(capsys):
    assert main(["train", "--no-augment", "--area-range", "0.5", "1"]) == 2
    assert "area_range" in capsys.readouterr().err

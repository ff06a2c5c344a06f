"""The train and evaluate commands end to end, on the built-in shapes set (smoke size)."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import keras
import pytest

from inception_keras.cli import main
from inception_keras.training import read_history

# Every test here trains, exports or starts processes: the slow tier.
pytestmark = pytest.mark.slow

EPOCHS = 4


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


def test_killed_run_resumes_at_the_last_finished_epoch(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    command = train_command(data_dir, out)
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    history_csv = out / "history.csv"
    deadline = time.time() + 600
    while time.time() < deadline and first.poll() is None:
        if history_csv.exists() and len(history_csv.read_text().splitlines()) >= 3:  # header + 2
            break
        time.sleep(0.2)
    assert first.poll() is None, (
        "the first run ended before it could be killed:\n" + first.stdout.read()
    )
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    finished = len(read_history(history_csv)["epoch"])
    assert 2 <= finished < EPOCHS
    assert (out / "backup").exists()

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"Epoch {finished + 1}/{EPOCHS}" in resumed.stdout
    assert "Epoch 1/" not in resumed.stdout  # did not restart from scratch
    history = read_history(history_csv)
    assert history["epoch"] == [float(e) for e in range(EPOCHS)]  # each epoch once
    assert not (out / "backup").exists()
    # Where an uninterrupted run ends: all epochs' optimizer steps, weights and state restored.
    last = keras.saving.load_model(out / "last.keras", safe_mode=True)
    steps_per_epoch = -(-512 // 64)
    assert int(last.optimizer.iterations) == EPOCHS * steps_per_epoch
    assert "best validation top-1" in resumed.stdout

    # Export every format from the best checkpoint, then evaluate checkpoint and artefacts alike.
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(out / "best.keras"),
                "--output",
                str(tmp_path / "sm"),
                "--calibration-images",
                "16",
            ]
        )
        == 0
    )
    version = tmp_path / "sm" / "googlenet" / "1"
    manifest = json.loads((version / "manifest.json").read_text())
    for name in (
        "saved_model.pb",
        "googlenet_float32.tflite",
        "googlenet_float16.tflite",
        "googlenet_dynamic_int8.tflite",
        "googlenet_int8.tflite",
        "googlenet.onnx",
    ):
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
    for model, crops in runs:
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
        )
        assert code == 0
        printed = capsys.readouterr().out
        assert f"128 images, {crops} crop(s) each: top-1" in printed
        scores[model.name, crops] = printed.split("top-1")[1].split(", loss")[0]
    for model, crops in runs[2:]:  # every float32 artefact scores like its checkpoint
        assert scores[model.name, crops] == scores["best.keras", "1"], model.name


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
        5,
        "modern",
        0.99,
    )
    assert (data.dataset, data.batch_size, data.cache, data.image_size) == (
        "shapes/64px",
        64,
        True,
        64,
    )
    assert data.augment.area_range == (0.5, 1.0)
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
    _, data = _configs_from_cli(monkeypatch, ["--preset", "quickstart", "--no-augment"])
    assert data.augment is None


def test_augmentation_options_with_augmentation_off_are_refused(capsys):
    assert main(["train", "--no-augment", "--area-range", "0.5", "1"]) == 2
    assert "area_range" in capsys.readouterr().err

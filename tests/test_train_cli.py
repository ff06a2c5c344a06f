"""The train and evaluate commands end to end, on the built-in shapes set (smoke size)."""

import os
import signal
import subprocess
import sys
import time

import keras
import pytest

from inception_keras.cli import main
from inception_keras.training import read_history

EPOCHS = 4


def train_command(data_dir, output_dir):
    return [sys.executable, "-m", "inception_keras.cli", "train", "--dataset", "shapes/smoke",
            "--data-dir", str(data_dir), "--variant", "bn", "--image-size", "32",
            "--batch-size", "64", "--epochs", str(EPOCHS), "--recipe", "modern",
            "--ema-momentum", "0.9", "--output-dir", str(output_dir)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from inception_keras import shapes

    path = tmp_path_factory.mktemp("tfds")
    shapes.prepare("shapes/smoke", str(path))
    return path


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
    assert first.poll() is None, "the first run ended before it could be killed:\n" + first.stdout.read()
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

    # evaluate the best checkpoint (1 and 10 crops) and the SavedModel exported from it alike.
    from inception_keras.export.saved_model import export_saved_model

    exported = export_saved_model(keras.saving.load_model(out / "best.keras"), tmp_path / "export")
    scores = {}
    for model, crops in ((out / "best.keras", "1"), (out / "best.keras", "10"), (exported, "1")):
        code = main(["evaluate", "--model", str(model), "--dataset", "shapes/smoke",
                     "--data-dir", str(data_dir), "--crops", crops])
        assert code == 0
        printed = capsys.readouterr().out
        assert f"128 images, {crops} crop(s) each: top-1" in printed
        scores[str(model), crops] = printed.split("top-1")[1].split("; skipped")[0]
    assert scores[str(exported), "1"] == scores[str(out / "best.keras"), "1"]


def test_train_stops_before_training_on_a_bad_source(tmp_path, capsys):
    code = main(["train", "--dataset", str(tmp_path / "missing"), "--output-dir", str(tmp_path / "o")])
    assert code == 2
    assert "missing" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_preset_sets_defaults_and_flags_override(monkeypatch):
    import inception_keras.training as training

    seen = {}

    class Result:
        def summary(self):
            return "ok"

    def fake_train(config, data_config, steps_per_epoch=None):  # the CLI's mapping only
        seen.update(config=config, data=data_config)
        return Result()

    monkeypatch.setattr(training, "train", fake_train)
    assert main(["train", "--preset", "quickstart", "--variant", "paper", "--learning-rate", "1e-3"]) == 0
    config, data = seen["config"], seen["data"]
    assert (config.variant, config.learning_rate) == ("paper", 1e-3)  # flags win
    assert (config.image_size, config.epochs, config.recipe, config.ema_momentum) == (64, 5, "modern", 0.99)
    assert (data.dataset, data.batch_size, data.cache) == ("shapes/64px", 64, True)
    assert data.augment.area_range == (0.5, 1.0)

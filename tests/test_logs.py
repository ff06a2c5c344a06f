"""Readable logs: when stdout is not a terminal, training prints one line per epoch instead of
the progress bar's redraws, and evaluation prints no progress at all."""

import io
import re
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import inception_keras as ik
from inception_keras.recipes import PRESETS
from inception_keras.training import progress_verbosity


@pytest.mark.slow
def test_piped_training_logs_one_line_per_epoch(quickstart_run):
    # The quickstart's training command, its stdout a file (tests/conftest.py), not a terminal.
    log = quickstart_run.log
    assert "\r" not in log and "\b" not in log and "\x1b[" not in log
    epochs = PRESETS["quickstart"]["epochs"]
    assert [line for line in log.splitlines() if line.startswith("Epoch ")] == [
        f"Epoch {epoch}/{epochs}" for epoch in range(1, epochs + 1)
    ]
    metric_lines = [line for line in log.splitlines() if "loss:" in line]
    assert len(metric_lines) == epochs, log[-3000:]
    for line in metric_lines:
        steps = re.match(r"(\d+)/(\d+) - ", line)
        assert steps and steps[1] == steps[2] and "val_predictions_top1:" in line, line


@pytest.mark.slow
def test_evaluation_prints_no_progress_when_stdout_is_not_a_terminal(capsys):
    assert not sys.stdout.isatty()  # pytest's capture, as a pipe would be
    keras.utils.set_random_seed(0)
    model = ik.GoogLeNet(input_shape=(32, 32, 3), classes=3, variant="bn")
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    capsys.readouterr()
    scores = ik.evaluate_model(model, list(zip(x, [0, 1, 2, 0])), batch_size=2)
    assert scores.num_images == 4
    assert capsys.readouterr().out == ""


class Terminal(io.StringIO):
    def isatty(self):
        return True


class NoIsatty:
    def write(self, text):
        return len(text)


class Stop(Exception):
    pass


@pytest.mark.slow
@pytest.mark.parametrize(
    "verbose, terminal, expected",
    [("auto", False, 2), ("auto", True, 1), (0, False, 0), (1, False, 1), (2, True, 2)],
)
def test_fit_passes_the_resolved_verbosity_to_keras(
    tmp_path, monkeypatch, verbose, terminal, expected
):
    seen = {}

    def spy(model, *args, **kwargs):  # stops before any training step
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(keras.Model, "fit", spy)
    rng = np.random.default_rng(0)
    data = tf.data.Dataset.from_tensor_slices(
        (rng.uniform(0, 255, (4, 32, 32, 3)).astype("float32"), np.array([0, 1, 2, 0]))
    ).batch(2)
    config = ik.TrainConfig(variant="bn", image_size=32, epochs=1, output_dir=str(tmp_path))
    monkeypatch.setattr(sys, "stdout", Terminal() if terminal else io.StringIO())
    with pytest.raises(Stop):
        ik.fit(config, data, data, 3, verbose=verbose)
    assert seen["verbose"] == expected


def test_auto_verbosity_follows_the_stream():
    assert progress_verbosity("auto", Terminal()) == 1
    assert progress_verbosity("auto", io.StringIO()) == 2
    assert progress_verbosity("auto", NoIsatty()) == 2
    for explicit in (0, 1, 2):
        assert progress_verbosity(explicit, io.StringIO()) == explicit
        assert progress_verbosity(explicit, Terminal()) == explicit
    # Without a stream: sys.stdout, whatever it is now.
    assert progress_verbosity() == (1 if sys.stdout.isatty() else 2)

"""Readable logs: when stdout is not a terminal, training prints one line per epoch instead of
the progress bar's redraws, and evaluation prints no progress at all."""

import io
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import inception_keras as ik
from inception_keras.training import progress_verbosity

# A tiny run of the package's own fit (2 epochs of 2 batches, default verbosity), then an
# evaluation; stdout is the pipe the test reads. argv: the output directory.
SCRIPT = textwrap.dedent(
    """
    import sys

    import numpy as np
    import tensorflow as tf

    import inception_keras as ik

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 3, 16).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    config = ik.TrainConfig(
        variant="bn", image_size=32, epochs=2, recipe="modern", output_dir=sys.argv[1]
    )
    result = ik.fit(config, data, data, 3)
    print("END OF TRAINING")
    scores = ik.evaluate_model(result.model, list(zip(x[:4], y[:4])), batch_size=2)
    print(f"evaluated {scores.num_images} images")
    """
)


@pytest.mark.slow
def test_piped_training_logs_one_line_per_epoch(tmp_path):
    command = [sys.executable, "-c", SCRIPT, str(tmp_path / "run")]
    result = subprocess.run(command, capture_output=True)  # stdout: a pipe, not a terminal
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    out = result.stdout.decode()
    assert "\r" not in out and "\b" not in out and "\x1b[" not in out
    training, evaluation = out.split("END OF TRAINING\n")
    metric_lines = [line for line in training.splitlines() if "loss:" in line]
    assert len(metric_lines) == 2, training
    for line in metric_lines:
        assert line.startswith("2/2 - ") and "val_predictions_top1:" in line
    assert [line for line in training.splitlines() if line.startswith("Epoch ")] == [
        "Epoch 1/2",
        "Epoch 2/2",
    ]
    assert evaluation == "evaluated 4 images\n"


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

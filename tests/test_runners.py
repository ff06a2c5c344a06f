"""load_runner: one callable per artefact format, each in its own runtime, all agreeing."""

import numpy as np
import pytest
from _classifiers import assert_image_dependent, spread_predictions

import inception_keras as ik
from inception_keras.export.onnx import export_onnx
from inception_keras.export.runners import load_runner
from inception_keras.export.saved_model import export_saved_model
from inception_keras.export.tflite import export_tflite

# Every test here trains, exports or starts processes: the slow tier.
pytestmark = pytest.mark.slow


def colour_images(n, seed):
    """Flat colours plus noise: a random network's features differ far more between these than
    between noise images, so its answers differ without amplifying float error."""
    rng = np.random.default_rng(seed)
    colours = rng.uniform(0, 255, (n, 1, 1, 3))
    return np.clip(colours + rng.normal(0, 20, (n, 64, 64, 3)), 0, 255).astype("float32")


def test_every_format_loads_and_agrees(tmp_path):
    x, calibration = (colour_images(n, seed) for n, seed in ((4, 0), (8, 1)))
    model = ik.GoogLeNet(input_shape=(64, 64, 3), classes=5, include_aux=True)
    spread_predictions(model, calibration, spread=0.7)  # float error grows with the spread
    checkpoint = tmp_path / "model.keras"
    model.save(checkpoint)
    paths = {
        "keras": checkpoint,
        "saved_model": export_saved_model(model, tmp_path / "sm"),
        "tflite": export_tflite(model, tmp_path / "m.tflite"),
        "onnx": export_onnx(model, tmp_path / "m.onnx"),
    }
    expected = ik.inference_model(model).predict(x, verbose=0)
    assert_image_dependent(expected, 1e-5)
    for name, path in paths.items():
        runner = load_runner(path)
        assert runner.input_shape == (None, 64, 64, 3), name
        assert runner.num_classes == 5, name
        np.testing.assert_allclose(runner(x), expected, atol=1e-5, err_msg=name)


def test_unknown_or_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_runner(tmp_path / "missing.keras")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="notes.txt"):
        load_runner(tmp_path / "notes.txt")
    (tmp_path / "broken.keras").write_text("not a zip")
    with pytest.raises(ValueError, match="broken.keras"):
        load_runner(tmp_path / "broken.keras")

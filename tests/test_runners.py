"""load_runner: one callable per artefact format, each in its own runtime, all agreeing."""

import keras
import numpy as np
import pytest
from _classifiers import assert_image_dependent

import inception_keras as ik
from inception_keras import shapes
from inception_keras.export.runners import load_runner


@pytest.mark.slow
def test_every_format_loads_and_agrees(quickstart_run):
    """The main job's checkpoint and its export (tests/conftest.py), on new validation images."""
    version = quickstart_run.export
    x = np.stack([image for image, _ in shapes.generate("validation", 8, 64, seed=1)])
    model = keras.saving.load_model(quickstart_run.checkpoint, safe_mode=True)
    expected = ik.inference_model(model).predict(x.astype("float32"), verbose=0)
    assert_image_dependent(expected, 1e-5)
    paths = {
        "keras": quickstart_run.checkpoint,
        "saved_model": version,
        "tflite": version / "googlenet_float32.tflite",
        "onnx": version / "googlenet.onnx",
    }
    for name, path in paths.items():
        runner = load_runner(path)
        assert runner.input_shape == (None, 64, 64, 3), name
        assert runner.num_classes == len(shapes.CLASS_NAMES), name
        np.testing.assert_allclose(runner(x.astype("float32")), expected, atol=1e-5, err_msg=name)


def test_unknown_or_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_runner(tmp_path / "missing.keras")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="notes.txt"):
        load_runner(tmp_path / "notes.txt")
    (tmp_path / "broken.keras").write_text("not a zip")
    with pytest.raises(ValueError, match="broken.keras"):
        load_runner(tmp_path / "broken.keras")

"""README's claims about the code that a test can hold: its Layout names every module, and its
Python blocks run (with small inputs where it uses big ones) without a warning."""

import pathlib
import warnings

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def layout_section():
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]


def test_layout_names_every_module_and_package():
    layout = layout_section()
    package = ROOT / "inception_keras"
    modules = [p for p in package.rglob("*.py") if p.name != "__init__.py"]
    packages = [p for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    assert len(modules) > 40 and packages  # the walk found the package
    unnamed = [str(p.relative_to(ROOT)) for p in modules if f"`{p.name}`" not in layout]
    unnamed += [str(p.relative_to(ROOT)) for p in packages if f"`{p.name}/`" not in layout]
    assert not unnamed, f"README's Layout does not name {unnamed}"


# --------------------------------------------------------------------------
# README's Python blocks, run as a user would, with small inputs for big ones
# --------------------------------------------------------------------------
def python_blocks():
    """README's ```python blocks, in order, each with the first line of text it begins with."""
    readme = (ROOT / "README.md").read_text()
    return [part.split("\n```", 1)[0] for part in readme.split("\n```python\n")[1:]]


def block_starting(text):
    (block,) = [b for b in python_blocks() if b.lstrip().startswith(text)]
    return block


def replaced(block, *pairs):
    """``block`` with each ``(old, new)`` replaced; an ``old`` missing fails, so the README and the
    test cannot drift apart unnoticed."""
    for old, new in pairs:
        assert old in block, f"README block no longer holds {old!r}"
        block = block.replace(old, new)
    return block


def run_block(source, namespace=None):
    """Runs a block with every warning an error (a block's imports are already loaded)."""
    namespace = dict(namespace or {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # The one warning the suite ignores everywhere (setup.cfg): Keras' TF backend, not ours.
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        exec(compile(source, "README.md", "exec"), namespace)
    return namespace


# Blocks no test runs here, and why: each is a call a user makes against something this machine
# cannot offer.
NOT_RUN = {
    "import grpc": "talks to a running TF Serving server",
    "import inception_keras as ik  # before TensorFlow": "downloads the published ImageNet "
    "weights; tests/test_pretrained_use.py makes the same calls against a local server",
}


def test_every_python_block_is_run_or_says_why_not():
    starts = [b.lstrip().splitlines()[0] for b in python_blocks()]
    known = ["import inception_keras as ik", "from inception_keras.data import DataConfig"]
    known += ["from inception_keras import explain", *NOT_RUN]
    unknown = [s for s in starts if not any(s.startswith(k) for k in known)]
    assert not unknown, f"README Python blocks no test runs: {unknown}"


def test_readme_api_block_runs_without_warnings(capsys):
    namespace = run_block(block_starting("import inception_keras as ik\n\n# The paper's network"))
    assert namespace["y"].shape == (None, 28, 28, 256)
    # Called on a plain tensor, as a user would, still without a warning.
    features = run_block(
        "out = features(np.zeros((1, 224, 224, 3), np.float32))", {**namespace, "np": np}
    )["out"]
    assert set(features) == {"inception_4d", "inception_5b"}
    assert "inception (5b)" in capsys.readouterr().out


@pytest.mark.slow
def test_readme_training_block_runs_without_warnings(shapes_data_dir, tmp_path, monkeypatch):
    import tensorflow as tf

    monkeypatch.chdir(tmp_path)
    # A few steps instead of whole runs, so no weight averaging: fit rightly warns that an
    # average over ~1000 steps would lag a run this short.
    small = replaced(
        block_starting("import inception_keras as ik\n\nresult = ik.train("),
        (
            'image_size=224, epochs=30, recipe="paper"',
            'image_size=32, epochs=1, recipe="paper", ema=False',
        ),
        (
            'dataset="tf_flowers", data_dir="~/tensorflow_datasets", batch_size=64',
            f'dataset="shapes/smoke", data_dir={str(shapes_data_dir)!r}, batch_size=64',
        ),
        (
            'preset="quickstart", epochs=5,',
            f'preset="quickstart", epochs=1, steps_per_epoch=4, ema=False,'
            f' data_dir={str(shapes_data_dir)!r}, dataset="shapes/smoke",',
        ),
        (
            "ik.TrainConfig(image_size=96, epochs=10)",
            'ik.TrainConfig(image_size=32, epochs=1, ema=False, output_dir="runs/own")',
        ),
    )
    images = tf.random.uniform([8, 32, 32, 3], 0, 255)
    batches = tf.data.Dataset.from_tensor_slices((images, tf.range(8) % 10)).batch(4)
    namespace = run_block(small, {"train_ds": batches, "val_ds": batches})
    assert namespace["result"].epochs == 1 and len(namespace["model"].outputs) == 3


@pytest.mark.slow
def test_readme_evaluation_and_explain_blocks_run_without_warnings(quickstart_run):
    from inception_keras import shapes

    checkpoint = str(quickstart_run.checkpoint)
    evaluation = replaced(
        block_starting("from inception_keras.data import DataConfig"),
        ('"runs/quickstart/best.keras"', repr(checkpoint)),
        ('data_dir="runs/tfds"', f"data_dir={str(quickstart_run.data_dir)!r}"),
    )
    namespace = run_block(evaluation)
    assert namespace["result"].confusion.sum() == 1000
    images = np.stack([image for image, _ in shapes.generate("validation", 4, 64)]).astype("f4")
    explained = replaced(
        block_starting("from inception_keras import explain"),
        ('"runs/quickstart/best.keras"', repr(checkpoint)),
    )
    namespace = run_block(explained, {"images": images})
    assert namespace["maps"].shape == (4, 64, 64)
    assert len(namespace["result"].branches.blocks) == 9

"""Backbone features of image files (inception_keras.features) and the ``features`` command.

The oracle: the block's output computed here by a model cut at that layer
(``keras.Model(model.input, model.get_layer(name).output)``) on images decoded here with the
evaluation preprocessing (``decode_for_eval``), then averaged over height and width in NumPy - so
``pool5`` is checked as the mean of ``inception_5b``, not read back from the same layer."""

import csv
import glob
import math
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import inception_keras as ik
from inception_keras import cli, features
from inception_keras.errors import UsageError
from inception_keras.preprocessing import decode_for_eval

SIZE = 48  # inception_5b is 2x2 and inception_4e 3x3 here: their means are real averages
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def model():
    # With aux heads: features come from the main path whatever heads the model has.
    return ik.GoogLeNet(input_shape=(SIZE, SIZE, 3), classes=3, variant="bn", include_aux=True)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Seven images of different sizes and shapes (so the central crop and resize matter) in two
    class folders, one a JPEG; returns the folder."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(7)
    shapes = [(40, 56), (64, 48), (50, 50), (36, 60), (60, 40), (48, 64), (44, 52)]
    for i, (height, width) in enumerate(shapes):
        folder = root / ("cat" if i < 4 else "dog")
        folder.mkdir(exist_ok=True)
        # A colour ramp of its own per image, plus noise: images whose features clearly differ.
        ramp = np.linspace(0, 1, width)[None, :, None] * rng.uniform(0, 255, 3)
        pixels = np.clip(ramp + rng.normal(0, 40, (height, width, 3)), 0, 255).astype(np.uint8)
        encode = tf.io.encode_jpeg if i == 5 else tf.io.encode_png
        tf.io.write_file(str(folder / f"{i}.{'jpg' if i == 5 else 'png'}"), encode(pixels))
    return root


def expected(model, files, layer, pooling="avg"):
    """The oracle: ``layer``'s output on the images decoded here, pooled in NumPy."""
    cut = keras.Model(model.input, model.get_layer(layer).output)
    pixels = np.stack([decode_for_eval(tf.io.read_file(str(f)), SIZE).numpy() for f in files])
    maps = keras.ops.convert_to_numpy(cut(pixels, training=False)).astype(np.float64)
    if maps.ndim == 4 and pooling is not None:
        return maps.mean(axis=(1, 2)) if pooling == "avg" else maps.max(axis=(1, 2))
    return maps


def csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def sorted_files(root):
    return sorted(glob.glob(os.path.join(root, "*", "*")))


# --------------------------------------------------------------------------
# Against the oracle
# --------------------------------------------------------------------------
@pytest.mark.slow
def test_pool5_features_are_the_mean_of_inception_5b_in_the_csv_order(model, images, tmp_path):
    # A file first, then the folder (the file again inside it): rows follow the input order, each
    # file once, as first met (given alone, it has no class folder); 3 does not divide 7 images.
    first = os.path.join(images, "dog", "6.png")
    result = ik.extract_features(model, [first, images], tmp_path / "f.npy", batch_size=3)

    rows = csv_rows(tmp_path / "f.csv")
    order = [first] + [f for f in sorted_files(images) if f != first]
    assert [row["path"] for row in rows] == order
    assert [row["class"] for row in rows] == ["", "cat", "cat", "cat", "cat", "dog", "dog"]

    saved = np.load(tmp_path / "f.npy")
    oracle = expected(model, order, "inception_5b")
    assert saved.dtype == np.float32 and saved.shape == (7, 1024) == result.shape
    # The rows are different enough that a swapped or shifted row could not pass.
    gaps = [np.abs(oracle[i] - oracle[j]).max() for i in range(7) for j in range(i)]
    assert min(gaps) > 100 * TOLERANCE
    np.testing.assert_allclose(saved, oracle, rtol=TOLERANCE, atol=TOLERANCE)
    assert (result.layer, result.pooling, result.errors) == ("pool5", None, {})
    assert result.format().startswith("Wrote 7 image(s) x 1024 features (layer pool5) to ")


@pytest.mark.slow
def test_a_block_averaged_maxed_or_kept_whole(model, images, tmp_path):
    files = sorted_files(images)
    for layer, pooling, shape, oracle_layer in (
        ("inception_4e", "avg", (7, 832), "inception_4e"),
        ("inception_4e", "max", (7, 832), "inception_4e"),
        ("inception_4e", None, (7, 3, 3, 832), "inception_4e"),
        # A convolution by its paper name is its unit's output: after batch norm and ReLU.
        ("conv2", "avg", (7, 192), "conv2_relu"),
    ):
        output = tmp_path / f"{layer}_{pooling}.npy"
        result = ik.extract_features(
            model, [images], output, layer=layer, pooling=pooling, batch_size=4
        )
        saved = np.load(output)
        assert saved.shape == shape == result.shape and result.pooling == pooling
        oracle = expected(model, files, oracle_layer, pooling)
        np.testing.assert_allclose(saved, oracle, rtol=TOLERANCE, atol=TOLERANCE)
    raw = expected(model, files, "conv2")  # the convolution alone (no batch norm, no ReLU)
    assert np.abs(raw - oracle).max() > 100 * TOLERANCE


@pytest.mark.slow
def test_written_into_the_file_batch_by_batch(model, images, tmp_path):
    """Each batch goes into the memory-mapped .npy as it is computed: after each batch the
    temporary file beside the output already holds that batch's rows and nothing beyond, and no
    call sees more than one batch's new rows; the output appears only at the end."""
    files, output, batch = sorted_files(images), tmp_path / "f.npy", 2
    oracle = expected(model, files, "inception_5b")
    seen = []

    def check(rows, total):
        (partial,) = glob.glob(str(tmp_path / ".f.npy.*.npy"))
        on_disk = np.load(partial, mmap_mode="r")  # another mapping of the same file
        assert on_disk.shape == (total, 1024)
        np.testing.assert_allclose(on_disk[:rows], oracle[:rows], rtol=TOLERANCE, atol=TOLERANCE)
        assert not np.any(on_disk[rows:])  # reserved, not yet written
        assert not output.exists()
        seen.append(rows)

    ik.extract_features(model, [images], output, batch_size=batch, on_batch=check)
    assert seen == [2, 4, 6, 7] and len(seen) == math.ceil(len(files) / batch)
    assert glob.glob(str(tmp_path / ".*")) == []  # no temporary left


@pytest.mark.slow
def test_unreadable_files_get_no_row(model, images, tmp_path):
    folder = tmp_path / "mixed"
    good = sorted_files(images)[:3]
    for i, path in enumerate(good):
        (folder / "a").mkdir(parents=True, exist_ok=True)
        (folder / "a" / f"{i}.png").write_bytes(open(path, "rb").read())
    (folder / "a" / "1b.png").write_bytes(b"not a png")  # sorted between the good ones
    result = ik.extract_features(model, [folder, tmp_path / "missing.png"], tmp_path / "f.npy")

    names = [str(folder / "a" / f"{i}.png") for i in range(3)]
    assert [row["path"] for row in csv_rows(tmp_path / "f.csv")] == names
    saved = np.load(tmp_path / "f.npy")  # the rows reserved for the bad file are cut off
    assert saved.shape == (3, 1024) == result.shape
    np.testing.assert_allclose(saved, expected(model, names, "inception_5b"), atol=TOLERANCE)
    header = np.load(tmp_path / "f.npy", mmap_mode="r").offset
    assert os.path.getsize(tmp_path / "f.npy") == header + saved.nbytes
    assert list(result.errors) == [str(folder / "a" / "1b.png"), str(tmp_path / "missing.png")]
    assert "decoded" in result.errors[str(folder / "a" / "1b.png")]

    # Nothing readable: an error, and no file (nor a temporary) left behind.
    with pytest.raises(UsageError, match="none of the 1 image"):
        ik.extract_features(model, [folder / "a" / "1b.png"], tmp_path / "g.npy")
    assert sorted(os.listdir(tmp_path)) == ["f.csv", "f.npy", "mixed"]


def test_layer_names_on_the_main_path_only(model, images, tmp_path):
    for layer in ("inception_9z", "aux1_conv"):  # aux1_conv: the aux head is not the main path
        with pytest.raises(UsageError, match=f"'{layer}' is not a layer.*inception_4e.*pool5"):
            ik.extract_features(model, [images], tmp_path / "f.npy", layer=layer)
    with pytest.raises(UsageError, match="'images' is not a feature layer"):
        ik.extract_features(model, [images], tmp_path / "f.npy", layer="images")
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_the_command_end_to_end(model, images, tmp_path, capsys, monkeypatch):
    checkpoint = tmp_path / "model.keras"
    model.save(checkpoint)
    output = tmp_path / "out" / "features.npy"
    command = ["features", str(images), "--model", str(checkpoint), "--output", str(output)]

    assert cli.main([*command, "--batch-size", "5"]) == 0
    out, err = capsys.readouterr()
    assert out == (
        f"Wrote 7 image(s) x 1024 features (layer pool5) to {output}; their files, in the same "
        f"order, to {output.with_suffix('.csv')}.\n"
    )
    assert err == ""  # not a terminal: no progress
    files = sorted_files(images)
    assert [row["path"] for row in csv_rows(output.with_suffix(".csv"))] == files
    oracle = expected(model, files, "inception_5b")
    np.testing.assert_allclose(np.load(output), oracle, rtol=TOLERANCE, atol=TOLERANCE)

    # An existing output is refused, then replaced with --overwrite.
    assert cli.main(command) == 2
    assert "already exist; choose another output or pass --overwrite" in capsys.readouterr().err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: progress per batch
    replace = ["--overwrite", "--layer", "inception_4e", "--pooling", "none", "--batch-size", "4"]
    assert cli.main([*command, *replace]) == 0
    assert capsys.readouterr().err == "\r4/7 images\r7/7 images\n"
    monkeypatch.undo()
    assert np.load(output).shape == (7, 3, 3, 832)

    for argv, message in (
        ([*command[:-1], str(tmp_path / "f.txt")], "must end in .npy"),
        ([*command, "--overwrite", "--layer", "inception_9z"], "valid: conv1, pool1,"),
        (["features", str(tmp_path / "none"), *command[2:], "--overwrite"], "no images found"),
    ):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("inception-keras features: error: "), err
        assert message in err[0], err


# --------------------------------------------------------------------------
# Fast: what is refused before any model is loaded, and the .npy shortening
# --------------------------------------------------------------------------
def test_refused_before_loading_anything(tmp_path):
    missing = tmp_path / "no.keras"  # never opened: each check comes first
    (tmp_path / "taken.csv").write_text("path,class\n")
    for kwargs, message in (
        (dict(output=tmp_path / "f.txt"), r"must end in \.npy"),
        (dict(output=tmp_path / "taken.npy"), r"taken\.csv already exists"),
        (dict(output=tmp_path / "f.npy", pooling="sum"), "`pooling` must be one of"),
        (dict(output=tmp_path / "f.npy", batch_size=0), "`batch_size` must be at least 1"),
    ):
        with pytest.raises(UsageError, match=message):
            features.extract_features(missing, ["x.png"], **kwargs)
    with pytest.raises(UsageError, match="not a .keras checkpoint.*SavedModel, TFLite, ONNX"):
        features.extract_features(tmp_path / "m.tflite", ["x.png"], tmp_path / "f.npy")
    with pytest.raises(UsageError, match="does not exist"):
        features.extract_features(missing, ["x.png"], tmp_path / "f.npy")
    assert sorted(os.listdir(tmp_path)) == ["taken.csv"]


@pytest.mark.parametrize("shape", [(5, 3), (5, 2, 2, 3), (100_000, 1)])
def test_keep_rows_cuts_a_npy_in_place(tmp_path, shape):
    path = str(tmp_path / "a.npy")
    values = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    array[:] = values
    del array
    features._keep_rows(path, 3)
    kept = np.load(path)
    np.testing.assert_array_equal(kept, values[:3])
    assert os.path.getsize(path) == np.load(path, mmap_mode="r").offset + kept.nbytes


# --------------------------------------------------------------------------
# What the features are for: a classifier fitted on them, with a trained model
# --------------------------------------------------------------------------
def _class_folders(directory, split, count, seed):
    """``count`` built-in shapes images of ``split`` in one sub-folder per class."""
    from inception_keras import shapes

    for path in shapes.write_images(str(directory / "flat"), count, 64, split, seed):
        name = os.path.basename(path)
        target = directory / name[3 : -len(".png")] / name  # 00_circle.png -> circle/
        target.parent.mkdir(exist_ok=True)
        os.replace(path, target)
    os.rmdir(directory / "flat")
    return directory


@pytest.mark.slow
def test_nearest_centroid_on_the_quickstart_features(quickstart_run, tmp_path):
    """The quickstart model's pool5 features of training images, averaged per class (the CSV's
    class column), classify unseen validation images by the nearest centroid nearly as well as
    the model's own classifier."""
    train = _class_folders(tmp_path / "train", "train", 96, seed=1)
    validation = _class_folders(tmp_path / "validation", "validation", 96, seed=2)
    fitted, held_out = (
        ik.extract_features(quickstart_run.checkpoint, [folder], tmp_path / f"{folder.name}.npy")
        for folder in (train, validation)
    )
    x, labels = np.load(fitted.features), [r["class"] for r in csv_rows(fitted.index)]
    names = sorted(set(labels))
    assert len(names) == 8 and x.shape == (96, 1024)
    centroids = np.stack([x[[label == n for label in labels]].mean(axis=0) for n in names])
    y = np.load(held_out.features)
    truth = [r["class"] for r in csv_rows(held_out.index)]
    distances = ((y[:, None, :] - centroids[None]) ** 2).sum(axis=-1)
    predicted = [names[i] for i in distances.argmin(axis=1)]
    accuracy = np.mean([p == t for p, t in zip(predicted, truth)])
    # Measured: 94% (the model's own top-1: 98%); an untrained model's features give 11%, about
    # chance (1 in 8).
    assert accuracy >= 0.8, accuracy

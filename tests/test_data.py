"""Tests of the data sources and pipeline (inception_keras.data, .shapes)."""

import contextlib
import os
import shutil
import signal

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from test_preprocessing import encode_bmp, encode_gif  # test-only byte writers

from inception_keras import data, data_sources, shapes
from inception_keras.data_config import is_existing_image_folder
from inception_keras.errors import UsageError

# Solid colours per class, so a label can be checked from the pixels.
COLOURS = {"apple": (220, 30, 30), "banana": (30, 30, 220), "cherry": (30, 200, 30)}


def _write(path, data_bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as file:
        file.write(data_bytes)


def _image(colour, height=24, width=30):
    return np.broadcast_to(np.array(colour, np.uint8), (height, width, 3)).copy()


def make_folder(root, per_class=6, classes=COLOURS):
    """Class folders with mixed formats and extension cases, plus non-images."""
    writers = [
        (".png", lambda im: tf.io.encode_png(im).numpy()),
        (".JPG", lambda im: tf.io.encode_jpeg(im, quality=95).numpy()),
        (".Jpeg", lambda im: tf.io.encode_jpeg(im, quality=95).numpy()),
        (".BMP", encode_bmp),
        (".gif", lambda im: encode_gif([im])),
        (".PNG", lambda im: tf.io.encode_png(im).numpy()),
    ]
    for name, colour in classes.items():
        for i in range(per_class):
            ext, write = writers[i % len(writers)]
            _write(os.path.join(root, name, f"img{i}{ext}"), write(_image(colour)))
        _write(os.path.join(root, name, "notes.txt"), b"not an image")
        _write(os.path.join(root, name, ".hidden.png"), b"ignored")
    return root


def collect(dataset):
    images, labels = [], []
    for x, y in dataset:
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels)


def folder_config(root, **kwargs):
    defaults = dict(dataset=str(root), image_size=16, batch_size=4, seed=3)
    return data.DataConfig(**{**defaults, **kwargs})


# --------------------------------------------------------------------------
# Image folder source
# --------------------------------------------------------------------------
def test_folder_source_classes_formats_and_labels(tmp_path):
    root = make_folder(str(tmp_path / "imgs"))
    loaded = data.load_data(folder_config(root, validation_fraction=0.0, augment=None))
    assert loaded.class_names == ("apple", "banana", "cherry")
    assert loaded.train_examples == 18 and loaded.validation is None
    images, labels = collect(loaded.train)
    assert images.dtype == np.float32 and images.shape == (18, 16, 16, 3)
    assert labels.dtype == np.int32 and sorted(np.bincount(labels)) == [6, 6, 6]
    for image, label in zip(images, labels):  # every format decoded to its class colour
        expected = COLOURS[loaded.class_names[label]]
        assert np.allclose(image.mean((0, 1)), expected, atol=6)
    assert loaded.skipped_count() == 0


def test_folder_validation_fraction_is_disjoint_stratified_and_stable(tmp_path):
    root = make_folder(str(tmp_path / "imgs"), per_class=10)
    config = folder_config(root, validation_fraction=0.3)

    def split_files():
        train, validation = data_sources.split_fraction(
            data.list_image_folder(root), 0.3, config.seed
        )
        return {p for v in train.values() for p in v}, {p for v in validation.values() for p in v}

    train_files, val_files = split_files()
    assert len(val_files) == 9 and len(train_files) == 21 and not train_files & val_files
    assert split_files() == (train_files, val_files)  # same seed -> same split
    other = data_sources.split_fraction(data.list_image_folder(root), 0.3, seed=99)[1]
    assert {p for v in other.values() for p in v} != val_files

    loaded = data.load_data(config)
    assert (loaded.train_examples, loaded.validation_examples) == (21, 9)
    _, labels = collect(loaded.validation)
    assert list(np.bincount(labels)) == [3, 3, 3]


def test_explicit_validation_folder(tmp_path):
    train_root = make_folder(str(tmp_path / "train"), per_class=4)
    val_root = make_folder(
        str(tmp_path / "val"), per_class=2, classes={"banana": COLOURS["banana"]}
    )
    loaded = data.load_data(folder_config(train_root, validation_dir=val_root))
    assert loaded.train_examples == 12 and loaded.validation_examples == 2
    images, labels = collect(loaded.validation)
    assert list(labels) == [1, 1]  # "banana" keeps its index from the training folder
    assert np.allclose(images.mean((1, 2)), COLOURS["banana"], atol=6)

    bad_val = make_folder(str(tmp_path / "val2"), per_class=1, classes={"durian": (9, 9, 9)})
    with pytest.raises(ValueError, match="durian"):
        data.load_data(folder_config(train_root, validation_dir=bad_val))


def test_corrupt_files_are_skipped_and_counted(tmp_path):
    root = make_folder(str(tmp_path / "imgs"), per_class=4)
    bad = [os.path.join(root, "apple", "broken.jpg"), os.path.join(root, "banana", "truncated.png")]
    _write(bad[0], b"\xff\xd8 this is no jpeg")
    _write(bad[1], tf.io.encode_png(_image((1, 2, 3))).numpy()[:40])
    loaded = data.load_data(folder_config(root, validation_fraction=0.0))
    assert loaded.train_examples == 14
    for _ in range(2):  # two epochs: the count is per file, not per read
        _, labels = collect(loaded.train)
        assert len(labels) == 12
    assert loaded.skipped_files() == sorted(bad) and loaded.skipped_count() == 2


@pytest.mark.slow
def test_deterministic_mode_reproduces_batches(tmp_path):
    root = make_folder(str(tmp_path / "imgs"), per_class=4)
    noisy = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    for i in range(4):  # textured images make augmentation differences visible
        _write(
            os.path.join(root, "cherry", f"noise{i}.png"),
            tf.io.encode_png(np.roll(noisy, i, 0)).numpy(),
        )
    config = folder_config(root, deterministic=True, validation_fraction=0.25)
    first = data.load_data(config).train
    epoch1, epoch2 = collect(first), collect(first)
    again = collect(data.load_data(config).train)
    assert np.array_equal(epoch1[0], again[0]) and np.array_equal(epoch1[1], again[1])
    assert not np.array_equal(epoch1[0], epoch2[0])  # fresh augmentation/order each epoch
    assert 0 <= epoch1[0].min() and epoch1[0].max() <= 255 and epoch1[0].max() > 1.5


def test_only_training_pipelines_autotune(tmp_path):
    # fit keeps the validation iterator between epochs; destroying it while its autotuning thread
    # waited blocked training for up to a minute. Evaluation pipelines run without that thread.
    root = make_folder(str(tmp_path / "imgs"), per_class=4)
    loaded = data.load_data(folder_config(root, validation_fraction=0.25))
    assert loaded.train.options().autotune.enabled is True
    assert loaded.validation.options().autotune.enabled is False
    assert len(collect(loaded.validation)[1]) == loaded.validation_examples == 3  # 1 per class


def test_folder_errors_name_the_problem(tmp_path):
    missing = str(tmp_path / "missing")
    with pytest.raises(ValueError, match="missing.*does not exist"):
        data.load_data(folder_config(missing))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no class sub-folders"):
        data.load_data(folder_config(empty))
    (empty / "a").mkdir()
    (empty / "b").mkdir()
    _write(str(empty / "a" / "readme.txt"), b"x")
    with pytest.raises(ValueError, match="contains no images"):
        data.load_data(folder_config(empty))
    single = make_folder(str(tmp_path / "single"), per_class=2, classes={"apple": COLOURS["apple"]})
    with pytest.raises(ValueError, match=r"1 class\(es\) \['apple'\].*at least 2"):
        data.load_data(folder_config(single))
    part = make_folder(str(tmp_path / "part"), per_class=2)
    os.mkdir(os.path.join(part, "zucchini"))
    with pytest.raises(ValueError, match="zucchini"):
        data.load_data(folder_config(part))


def test_image_files_dataset_for_predict(tmp_path):
    root = make_folder(str(tmp_path / "imgs"), per_class=1)
    paths = [os.path.join(root, name, "img0.png") for name in COLOURS]
    bad = os.path.join(root, "bad.gif")
    _write(bad, b"GIF89a nonsense")
    dataset, stats = data.image_files_dataset(
        paths[:2] + [bad] + paths[2:], image_size=16, batch_size=2
    )
    images, names = collect(dataset)
    assert images.shape == (3, 16, 16, 3) and [n.decode() for n in names] == paths
    assert stats.skipped_files() == [bad]
    with pytest.raises(ValueError, match="not found"):
        data.image_files_dataset([str(tmp_path / "nope.jpg")])


@contextlib.contextmanager
def time_limit(seconds):
    """Fails the block after ``seconds`` (a listing that loops through links would never end)."""

    def expire(*_):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_links_are_followed_but_no_directory_is_listed_twice(tmp_path):
    root = make_folder(str(tmp_path / "imgs"), per_class=2)
    # Loops back into the tree: to the class folder itself, the root, another class, and a
    # directory above the root (which holds the whole tree).
    os.symlink(".", os.path.join(root, "apple", "self"))
    os.symlink("..", os.path.join(root, "apple", "loop"))
    os.symlink("../banana", os.path.join(root, "apple", "neighbour"))
    os.makedirs(os.path.join(root, "cherry", "deep", "er"))
    os.symlink("../../../..", os.path.join(root, "cherry", "deep", "er", "up"))
    # A data set linked in from outside is followed, once, even when linked twice.
    outside = tmp_path / "elsewhere"
    _write(str(outside / "extra.png"), tf.io.encode_png(_image(COLOURS["banana"])).numpy())
    os.symlink(outside, os.path.join(root, "banana", "linked"))
    os.symlink(outside, os.path.join(root, "banana", "linked_again"))
    os.symlink(outside / "extra.png", os.path.join(root, "banana", "file_link.png"))

    with time_limit(60):
        files = data.list_image_folder(root)
    assert {name: len(paths) for name, paths in files.items()} == {
        "apple": 2,
        "banana": 4,  # its own two, one of the two linked folders, the linked file
        "cherry": 2,
    }
    assert all(os.path.dirname(os.path.realpath(p)).endswith("apple") for p in files["apple"])
    with time_limit(60):
        loaded = data.load_data(folder_config(root, validation_fraction=0.0, augment=None))
    images, labels = collect(loaded.train)
    assert sorted(np.bincount(labels).tolist()) == [2, 2, 4] and loaded.train_examples == 8
    for image, label in zip(images, labels):  # every image labelled with its own class
        assert np.allclose(image.mean((0, 1)), COLOURS[loaded.class_names[label]], atol=6)

    # predict's listing: the whole tree once (8 images), whatever the links.
    with time_limit(60):
        found, errors = data.expand_image_paths([root])
    assert len(found) == len(set(found)) == 8 and not errors
    assert len({os.path.realpath(path) for path in found}) == 7  # the linked file: a second name


def test_only_regular_files_are_listed_or_read(tmp_path):
    root = make_folder(str(tmp_path / "imgs"), per_class=2)
    fifo = os.path.join(root, "apple", "pipe.png")
    os.mkfifo(fifo)  # reading it would block until someone writes
    os.symlink(os.devnull, os.path.join(root, "banana", "null.jpg"))
    os.symlink("/dev/zero", os.path.join(root, "banana", "zero.jpg"))  # would never end
    files = data.list_image_folder(root)
    assert sum(map(len, files.values())) == 6 and fifo not in files["apple"]
    found, errors = data.expand_image_paths([root, fifo, "/dev/zero"])
    assert len(found) == 6
    assert errors == {fifo: "not a regular file", "/dev/zero": "not a regular file"}
    dataset, stats = data.image_files_dataset([fifo, *found], image_size=8)
    assert sum(len(paths) for _, paths in dataset) == 6
    assert stats.skipped_files() == [fifo] and stats.reasons() == {fifo: "not a regular file"}


@pytest.mark.slow
def test_pipelines_skip_and_count_images_over_the_limits(tmp_path):
    root = make_folder(str(tmp_path / "imgs"), per_class=2)
    big = os.path.join(root, "apple", "big.png")
    noise = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    _write(big, tf.io.encode_png(noise).numpy())  # 1600 pixels, larger than the other files
    loaded = data.load_data(folder_config(root, validation_fraction=0.0, max_image_pixels=1599))
    assert len(collect(loaded.train)[1]) == 6
    assert loaded.skipped_files() == [big]
    assert loaded.decode_stats.reasons() == {
        big: "image is 40x40 pixels, over the limit of 1599 pixels"
    }
    # Over the byte limit by its size on disk: refused without being read, still reported.
    size = os.path.getsize(big)
    loaded = data.load_data(folder_config(root, validation_fraction=0.0, max_image_bytes=size - 1))
    assert len(collect(loaded.train)[1]) == 6 and loaded.train_examples == 7
    assert loaded.decode_stats.reasons() == {
        big: f"image is {size} bytes, over the limit of {size - 1} bytes"
    }
    # Evaluation's pipeline (whole images, several crops) too.
    examples, _, stats = data.load_examples(
        folder_config(root, validation_dir=root, max_image_pixels=1599)
    )
    assert len(list(examples)) == 6 and stats.skipped_files() == [big]
    with pytest.raises(ValueError, match="max_image_pixels must be a positive integer"):
        folder_config(root, max_image_pixels=0)


# --------------------------------------------------------------------------
# tfds source (with tfds' own mock, fully offline)
# --------------------------------------------------------------------------
def test_tfds_source_with_mock_tf_flowers(tmp_path):
    with tfds.testing.mock_data(num_examples=10):
        loaded = data.load_data(
            data.DataConfig(
                dataset="tf_flowers", data_dir=str(tmp_path), image_size=24, batch_size=4, seed=1
            )
        )
        assert loaded.class_names == ("dandelion", "daisy", "tulips", "sunflowers", "roses")
        for dataset in (loaded.train, loaded.validation):
            images, labels = collect(dataset)
            assert images.shape[1:] == (24, 24, 3) and images.dtype == np.float32
            assert labels.dtype == np.int32 and labels.min() >= 0 and labels.max() < 5
            assert 0 <= images.min() and images.max() <= 255
        assert loaded.skipped_count() == 0


def test_tfds_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'no_such_dataset_xyz'"):
        data.load_data(data.DataConfig(dataset="no_such_dataset_xyz", data_dir=str(tmp_path)))
    # Registered but never prepared: must not download, must say how to prepare.
    with pytest.raises(ValueError, match=r"'tf_flowers.*not prepared.*tfds build tf_flowers"):
        data.load_data(data.DataConfig(dataset="tf_flowers", data_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="not an image classification set"):
        with tfds.testing.mock_data(num_examples=2):
            data.load_data(data.DataConfig(dataset="glue/cola", data_dir=str(tmp_path)))


# --------------------------------------------------------------------------
# Built-in shapes data set
# --------------------------------------------------------------------------
def _split(split, count, size=32, seed=0):
    images, labels = zip(*shapes.generate(split, count, size, seed))
    return np.stack(images), np.array(labels)


def test_shapes_deterministic_by_seed_and_split():
    images, labels = _split("train", 20, seed=1)
    again, again_labels = _split("train", 20, seed=1)
    assert images.dtype == np.uint8 and images.shape == (20, 32, 32, 3)
    assert np.array_equal(images, again) and np.array_equal(labels, again_labels)
    assert not np.array_equal(images, _split("train", 20, seed=2)[0])
    assert not np.array_equal(images, _split("validation", 20, seed=1)[0])


def test_shapes_balanced_visible_and_inside_frame():
    _, labels = _split("test", 8 * 7 + 3)
    assert np.bincount(labels).max() - np.bincount(labels).min() <= 1
    labels = np.repeat(np.arange(len(shapes.CLASS_NAMES)), 6)
    _, masks = shapes.render(labels, np.random.default_rng(5), 64, return_masks=True)
    border = np.concatenate([masks[:, 0], masks[:, -1], masks[:, :, 0], masks[:, :, -1]], axis=1)
    assert border.max() == 0  # every figure lies fully inside the frame
    assert masks.sum((1, 2)).min() > 0.02 * 64 * 64  # and is clearly visible


def _softmax_regression_accuracy(x_train, y_train, x_val, y_val, steps=300, lr=0.5):
    """Full-batch multinomial logistic regression in numpy."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    classes = len(shapes.CLASS_NAMES)
    weights = np.zeros((x_train.shape[1], classes), np.float32)
    bias = np.zeros(classes, np.float32)
    onehot = np.eye(classes, dtype=np.float32)[y_train]
    for _ in range(steps):
        logits = x_train @ weights + bias
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        grad = (probs - onehot) / len(x_train)
        weights -= lr * (x_train.T @ grad / np.sqrt(x_train.shape[1]) + 1e-3 * weights)
        bias -= lr * grad.sum(0)

    def accuracy(x, y):
        return float(((x @ weights + bias).argmax(1) == y).mean())

    return accuracy(x_train, y_train), accuracy(x_val, y_val)


@pytest.mark.slow
def test_shapes_not_linearly_separable():
    def features(split, count):
        images, labels = _split(split, count, size=64)
        pooled = images.reshape(count, 16, 4, 16, 4, 3).mean((2, 4))  # 64 -> 16 px keeps it quick
        return pooled.reshape(count, -1).astype(np.float32) / 255, labels

    train_acc, val_acc = _softmax_regression_accuracy(
        *features("train", 2000), *features("validation", 400)
    )
    assert train_acc > val_acc + 0.1  # the classifier did fit its training set ...
    assert val_acc < 0.35  # ... but raw pixels stay near chance (1/8) on held-out data


def test_shapes_stream_is_endless_fresh_and_deterministic():
    def first(n):
        return list(shapes.stream(image_size=32, seed=0).take(n).as_numpy_iterator())

    samples = first(70)  # crosses a chunk boundary
    assert len(samples) == 70 and samples[0][0].shape == (32, 32, 3)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(samples, first(70)))
    fixed, _ = _split("train", 64)
    stream_images = np.stack([s[0] for s in samples[:64]])
    assert not any(np.array_equal(a, b) for a in stream_images for b in fixed)


def test_samples_command_writes_test_images_named_by_class(tmp_path, capsys):
    from PIL import Image

    from inception_keras.cli import main

    assert main(["samples", str(tmp_path / "new"), "--count", "3", "--image-size", "40"]) == 0
    assert capsys.readouterr().out == f"Wrote 3 images of the shapes set to {tmp_path / 'new'}\n"
    written = sorted((tmp_path / "new").iterdir())
    expected = list(shapes.generate("test", 3, 40))
    assert [p.name for p in written] == [
        f"{i:02d}_{shapes.CLASS_NAMES[label]}.png" for i, (_, label) in enumerate(expected)
    ]
    for path, (image, _) in zip(written, expected):  # lossless PNG: the very pixels
        np.testing.assert_array_equal(np.asarray(Image.open(path)), image)
    # Refused in one line, before the folder is made.
    for option, message in (
        (["--count", "0"], "count must be at least 1; got 0."),
        (["--image-size", "31"], "image_size must be at least 32 pixels; got 31."),
    ):
        assert main(["samples", str(tmp_path / "refused"), *option]) == 2
        assert capsys.readouterr().err == f"inception-keras samples: error: {message}\n"
    assert not (tmp_path / "refused").exists()


def test_shapes_tfds_builder_registered_and_loadable(tmp_path):
    assert "shapes" in tfds.list_builders(with_community_datasets=False)
    config = shapes.ShapesConfig(
        name="tiny", image_size=32, num_train=24, num_validation=8, num_test=8, seed=4
    )
    builder = tfds.builder("shapes", config=config, data_dir=str(tmp_path))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False)
    )
    info = builder.info
    assert info.features["label"].names == list(shapes.CLASS_NAMES)
    assert {name: split.num_examples for name, split in info.splits.items()} == {
        "train": 24,
        "validation": 8,
        "test": 8,
    }
    stored = list(builder.as_dataset(split="validation", as_supervised=True).as_numpy_iterator())
    expected = list(shapes.generate("validation", 8, 32, seed=4))
    assert all(np.array_equal(s[0], e[0]) and s[1] == e[1] for s, e in zip(stored, expected))


def test_a_set_prepared_into_the_working_folder_is_read_as_the_set(
    shapes_data_dir, tmp_path, monkeypatch
):
    """``--data-dir .`` prepares ``shapes/smoke`` at the very path its name reads as: a second
    run takes that folder as the tfds set again, not as an image folder of one class ("1.0.0")."""
    monkeypatch.chdir(shapes_data_dir)
    assert (shapes_data_dir / "shapes" / "smoke").is_dir()
    config = data.DataConfig(dataset="shapes/smoke", data_dir=".")
    picked, *_, class_names, label = data_sources.pick_source(config)
    assert (label, class_names) == ("tfds shapes/smoke", shapes.CLASS_NAMES)
    recorded = config.with_absolute_folders()
    assert (recorded.dataset, recorded.data_dir) == ("shapes/smoke", str(shapes_data_dir))
    # Written as a path, the same folder is taken as a folder (of no images); and a folder of
    # class folders at a tfds name's path is an image folder.
    with pytest.raises(UsageError, match=r"image folder '\./shapes/smoke' contains no images"):
        data_sources.pick_source(data.DataConfig(dataset="./shapes/smoke"))
    monkeypatch.chdir(tmp_path)
    make_folder(tmp_path / "shapes" / "smoke")
    config = data.DataConfig(dataset="shapes/smoke", validation_fraction=0)
    assert data_sources.pick_source(config)[-1] == "image folder shapes/smoke"
    assert config.with_absolute_folders().dataset == str(tmp_path / "shapes" / "smoke")


@pytest.mark.parametrize(
    "dataset, left",
    [
        ("shapes", "shapes/128px/1.0.0/dataset_info.json"),  # the default: name, then config
        ("tf_flowers", "tf_flowers/3.0.1/dataset_info.json"),  # a set without configs
        ("shapes/smoke", "shapes/smoke/incomplete.1a2b_1.0.0/"),  # a preparation cut short
    ],
)
def test_what_tfds_leaves_in_the_working_folder_is_not_an_image_folder(
    dataset, left, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    if left.endswith("/"):
        (tmp_path / left).mkdir(parents=True)
    else:
        (tmp_path / left).parent.mkdir(parents=True)
        (tmp_path / left).write_text("{}")
    assert not is_existing_image_folder(dataset)
    assert data.DataConfig(dataset=dataset).with_absolute_folders().dataset == dataset
    # The same folder holding class folders of images instead is an image folder.
    shutil.rmtree(tmp_path / dataset)
    make_folder(tmp_path / dataset)
    assert is_existing_image_folder(dataset)


@pytest.mark.slow
def test_load_data_default_shapes_source(tmp_path):
    config = data.DataConfig(
        dataset="shapes/smoke",
        data_dir=str(tmp_path),
        image_size=32,
        batch_size=64,
        deterministic=True,
    )
    loaded = data.load_data(config)  # prepares shapes/smoke into tmp_path, offline
    assert loaded.class_names == shapes.CLASS_NAMES
    assert (loaded.train_examples, loaded.validation_examples) == (512, 128)
    images, labels = next(iter(loaded.train))
    assert images.shape == (64, 32, 32, 3) and labels.dtype == tf.int32
    _, val_labels = collect(loaded.validation)
    assert len(val_labels) == 128
    streamed = data.load_data(data.DataConfig(**{**config.__dict__, "shapes_stream": True}))
    assert streamed.train_examples is None
    images, _ = next(iter(streamed.train))
    assert images.shape == (64, 32, 32, 3)


@pytest.mark.slow
def test_pipeline_feeds_keras_fit_and_reports_skips(tmp_path):
    import keras

    root = make_folder(str(tmp_path / "imgs"), per_class=4)
    _write(os.path.join(root, "apple", "broken.png"), b"\x89PNG garbage")
    loaded = data.load_data(folder_config(root, validation_fraction=0.25))
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(loaded.num_classes),
        ]
    )
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(loaded.train, validation_data=loaded.validation, epochs=2, verbose=0)
    assert len(history.history["val_loss"]) == 2
    assert loaded.skipped_count() == 1  # retrievable after training, for the summary


def test_batches_per_epoch_counts_known_filtered_and_endless_sets():
    ten = tf.data.Dataset.range(10)
    assert data.batches_per_epoch(ten.batch(4), None, 4) == 3  # its cardinality
    filtered = ten.filter(lambda x: x != 3).batch(4)  # unknown length: from the example count
    assert data.batches_per_epoch(filtered, 10, 4) == 3
    assert data.batches_per_epoch(filtered, None, 4) is None
    assert data.batches_per_epoch(ten.repeat().batch(4), 10, 4) is None  # endless

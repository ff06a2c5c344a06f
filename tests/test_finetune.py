"""The finetune recipe (inception_keras.finetune) and its feature cache
(inception_keras.feature_cache).

Oracles: the backbone run here on images decoded here with PIL (at the files' own size and
``crop_fraction=1``, so the evaluation transform is the identity); a classifier trained through
the frozen network by Keras itself on the same batches; the source checkpoint's weights, which
the frozen layers must still hold bit for bit; and a random-weights start of the same recipe,
which the pretrained one must beat."""

import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import inception_keras as ik
from inception_keras import feature_cache, finetune, pretrained, shapes
from inception_keras.data_config import DataConfig
from inception_keras.errors import UsageError
from inception_keras.files import read_history
from inception_keras.run_config import TrainConfig, run_configs

SIZE = 64
CLASSES = ("circle", "square", "triangle", "star")


def write_folder(root, per_class, seed, split="train"):
    """``per_class`` shapes images of each of CLASSES, at SIZE, as PNG class folders."""
    wanted = [shapes.CLASS_NAMES.index(name) for name in CLASSES]
    counts = dict.fromkeys(wanted, 0)
    for image, label in shapes.generate(split, 40 * per_class, SIZE, seed):
        if label in counts and counts[label] < per_class:
            folder = root / shapes.CLASS_NAMES[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{counts[label]:03d}.png")
            counts[label] += 1
    return root


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A training folder (12 images a class) and a validation folder (4 a class)."""
    root = tmp_path_factory.mktemp("finetune")
    return write_folder(root / "train", 12, 1), write_folder(root / "val", 4, 2, "validation")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A .keras GoogLeNet ("bn", 8 classes, SIZE) standing in for pretrained weights."""
    keras.utils.set_random_seed(3)
    model = ik.GoogLeNet(input_shape=(SIZE, SIZE, 3), classes=8, variant="bn")
    path = tmp_path_factory.mktemp("source") / "source.keras"
    model.save(path)
    return str(path)


def data_config(folders, **changes):
    train, val = folders
    return DataConfig(
        dataset=str(train),
        validation_dir=str(val),
        image_size=SIZE,
        crop_fraction=1.0,  # the files are SIZE x SIZE: the evaluation transform is the identity
        batch_size=16,
        **changes,
    )


def recipe_options(folders, weights, output_dir, **changes):
    """``ik.train`` options of a small finetune run on the folders."""
    return dict(
        dataset=str(folders[0]),
        validation_dir=str(folders[1]),
        image_size=SIZE,
        batch_size=16,
        recipe="finetune",
        weights=weights,
        output_dir=str(output_dir),
        **changes,
    )


def pil_images(folder):
    """The folder's images in the order the data source lists them (classes, then files)."""
    files = sorted(str(p) for p in folder.rglob("*.png"))
    pixels = np.stack([np.asarray(Image.open(f).convert("RGB"), np.float32) for f in files])
    labels = np.array([sorted(CLASSES).index(os.path.basename(os.path.dirname(f))) for f in files])
    return pixels, labels


def backbone_of(weights):
    keras.utils.set_random_seed(0)
    model = ik.GoogLeNet(input_shape=(SIZE, SIZE, 3), classes=len(CLASSES), variant="bn")
    pretrained.initialize_from(model, weights)
    return model, keras.Model(model.input, model.get_layer("pool5").output)


# --------------------------------------------------------------------------
# The feature cache
# --------------------------------------------------------------------------
@pytest.mark.slow
def test_cached_features_are_the_backbones_outputs_on_the_images(folders, source, tmp_path):
    _, backbone = backbone_of(source)
    cache = feature_cache.cached_features(
        backbone, data_config(folders), str(tmp_path), views=2, verbose=False
    )
    for features, labels, folder in (
        (cache.train[0], cache.train_labels, folders[0]),
        (cache.validation, cache.validation_labels, folders[1]),
    ):
        pixels, expected_labels = pil_images(folder)
        expected = keras.ops.convert_to_numpy(backbone(pixels, training=False))
        np.testing.assert_array_equal(labels, expected_labels)
        np.testing.assert_allclose(features, expected, atol=1e-5, rtol=1e-5)
    # The second view is an augmented crop: other features, the same images and labels.
    assert cache.train.shape == (2, len(cache.train_labels), 1024)
    assert np.abs(cache.train[1] - cache.train[0]).mean() > 0.05 * np.abs(cache.train[0]).mean()
    assert cache.class_names == tuple(sorted(CLASSES))


@pytest.mark.slow
def test_the_cache_is_reused_and_recomputed_when_an_input_changes(folders, source, tmp_path):
    model, backbone = backbone_of(source)
    config = data_config(folders)
    out = str(tmp_path)

    def cached(config=config, views=1):
        return feature_cache.cached_features(backbone, config, out, views=views, verbose=False)

    first = cached()
    assert not first.reused
    again = cached()
    assert again.reused and again.path == first.path
    np.testing.assert_array_equal(again.train, first.train)
    assert os.listdir(os.path.dirname(first.path)) == [os.path.basename(first.path)]

    def recomputed(result):
        assert not result.reused and result.path != first.path
        # Only the newest file is kept.
        assert os.listdir(os.path.dirname(result.path)) == [os.path.basename(result.path)]
        return result

    # Other weights: one backbone kernel nudged.
    kernel = model.get_layer("inception_3a_1x1").weights[0]
    original = kernel.numpy()
    kernel.assign(original * 1.01)
    try:
        changed = recomputed(cached())
        assert np.abs(changed.train - first.train).max() > 0
    finally:
        kernel.assign(original)
    assert not cached().reused  # back to the first weights: the file was replaced, so computed
    # Another crop, another number of views.
    recomputed(cached(dataclasses.replace(config, crop_fraction=0.875)))
    recomputed(cached(views=2))
    # One training image changed in place (same name, same size).
    path = sorted(folders[0].rglob("*.png"))[5]
    pixels = np.asarray(Image.open(path)).copy()
    try:
        Image.fromarray(255 - pixels).save(path)
        changed = recomputed(cached())
        assert np.abs(changed.train[0][5] - first.train[0][5]).max() > 0
    finally:
        Image.fromarray(pixels).save(path)
    # The same weights computing in bfloat16 (a mixed-precision run).
    keras.mixed_precision.set_global_policy("mixed_bfloat16")  # put back by conftest
    _, half = backbone_of(source)
    in_bf16 = feature_cache.cached_features(half, config, out, verbose=False)
    assert not in_bf16.reused and in_bf16.path != first.path
    assert 0 < np.abs(in_bf16.train - first.train).max() < 0.05 * np.abs(first.train).max()


@pytest.mark.slow
def test_unreadable_files_are_left_out_and_named(folders, source, tmp_path):
    train = tmp_path / "train"
    shutil.copytree(folders[0], train)
    broken = train / "star" / "broken.png"
    broken.write_bytes(b"not a PNG")
    config = dataclasses.replace(data_config(folders), dataset=str(train))
    _, backbone = backbone_of(source)
    for reused in (False, True):
        cache = feature_cache.cached_features(backbone, config, str(tmp_path), verbose=False)
        assert cache.reused == reused and cache.skipped_files == (str(broken),)
        assert cache.train.shape[1] == len(cache.train_labels) == 12 * len(CLASSES)


def test_views_need_augmentation_and_a_fixed_set(folders):
    from inception_keras import data

    with pytest.raises(UsageError, match="need augmentation"):
        data.load_views(data_config(folders, augment=None), views=2)
    with pytest.raises(UsageError, match="endless"):
        data.load_views(DataConfig(shapes_stream=True))


# --------------------------------------------------------------------------
# Phase 1 against Keras training through the frozen network
# --------------------------------------------------------------------------
@pytest.mark.slow
def test_classifier_from_the_cache_equals_one_trained_through_the_frozen_network(
    folders, source, tmp_path
):
    """One epoch of the recipe's first phase (no augmentation: one view) ends with the ``fc``
    weights that Keras' own ``fit`` of the whole network, everything but ``fc`` frozen, reaches
    on the same images in the same batches with the same optimizer settings."""
    config, data = run_configs(
        dataset=str(folders[0]),
        validation_dir=str(folders[1]),
        image_size=SIZE,
        crop_fraction=1.0,
        batch_size=16,
        recipe="finetune",
        weights=source,
        epochs=1,
        finetune_epochs=0,
        output_dir=str(tmp_path / "run"),
    )
    result = ik.train(config, data, verbose=0)
    trained = [w.numpy() for w in result.model.get_layer("fc").weights]

    # The reference: the same network and starting classifier, everything before fc frozen.
    keras.utils.set_random_seed(config.seed)
    reference = ik.GoogLeNet(input_shape=(SIZE, SIZE, 3), classes=len(CLASSES), variant="bn")
    pretrained.initialize_from(reference, source)
    start = [w.numpy() for w in reference.get_layer("fc").weights]
    for layer in reference.layers:
        layer.trainable = layer.name == "fc"
    reference.compile(
        optimizer=keras.optimizers.AdamW(config.learning_rate, weight_decay=config.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
    )
    pixels, labels = pil_images(folders[0])
    batches = finetune.head_dataset(pixels[None], labels, len(CLASSES), 16, seed=config.seed)
    reference.fit(batches, epochs=1, verbose=0, shuffle=False)
    expected = [w.numpy() for w in reference.get_layer("fc").weights]

    assert np.abs(expected[0] - start[0]).max() > 1e-4  # the epoch did move the classifier
    for got, want in zip(trained, expected):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)


# --------------------------------------------------------------------------
# Both phases
# --------------------------------------------------------------------------
@pytest.mark.slow
def test_two_phases_keep_the_frozen_layers_and_write_one_run(folders, source, tmp_path, capsys):
    out = tmp_path / "run"
    options = recipe_options(
        folders,
        source,
        out,
        epochs=3,
        patience=5,
        finetune_epochs=2,
        unfreeze_from="inception_4e",
        feature_views=2,
    )
    result = ik.train(verbose=0, **options)
    history = read_history(str(out / "history.csv"))
    assert history["phase"] == [1, 1, 1, 2, 2]
    assert history["epoch"] == [0, 1, 2, 3, 4]
    assert result.epochs == 5
    assert (out / "curves.png").exists() and not (out / "backup").exists()

    best = keras.saving.load_model(str(out / "best.keras"))
    assert len(best.outputs) == 1 and best.output_shape == (None, len(CLASSES))
    source_model = keras.saving.load_model(source)
    trained = {layer.name: layer for layer in result.model.layers}
    frozen_names = pretrained.freeze_until(keras.models.clone_model(source_model), "inception_4d")
    changed, unfrozen = 0, 0
    for layer in source_model.layers:
        if not layer.weights or layer.name not in trained or layer.name.startswith("aux"):
            continue
        for want, got in zip(layer.weights, trained[layer.name].weights):
            same = np.array_equal(want.numpy(), got.numpy())
            # Before unfreeze_from everything, and every BatchNorm layer (statistics and scale).
            if layer.name in frozen_names or isinstance(layer, keras.layers.BatchNormalization):
                assert same, (layer.name, want.path)
            elif layer.name.startswith(("inception_4e", "inception_5")):
                changed, unfrozen = changed + (not same), unfrozen + 1
    assert unfrozen >= 18 and changed == unfrozen  # every convolution of 4e, 5a and 5b trained

    # The same run again reuses the cached features.
    capsys.readouterr()
    ik.train(verbose=0, overwrite=True, **dict(options, finetune_epochs=0))
    out_text = capsys.readouterr().out
    assert "Computing" not in out_text and "Phase 1" in out_text


@pytest.mark.slow
def test_the_recipe_runs_in_its_precision_and_gives_the_policy_back(folders, source, tmp_path):
    options = recipe_options(
        folders, source, tmp_path / "run", epochs=1, finetune_epochs=1, precision="mixed_bfloat16"
    )
    result = ik.train(verbose=0, **options)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert result.model.get_layer("inception_5b_1x1").compute_dtype == "bfloat16"
    [cache] = (tmp_path / "run" / "feature_cache").glob("*.npz")
    with np.load(cache) as stored:
        assert json.loads(stored["described"].item())["compute_dtype"] == "bfloat16"


class Interrupt(keras.callbacks.Callback):
    """Stops the run with an exception at the end of the first epoch of ``phase``."""

    def __init__(self, phase):
        super().__init__()
        self.phase = phase

    def on_epoch_end(self, epoch, logs=None):
        if logs.get("phase") == self.phase:
            raise KeyboardInterrupt(f"interrupted in phase {self.phase}, epoch {epoch}")


@pytest.mark.slow
@pytest.mark.parametrize("phase", [1, 2])
def test_an_interrupted_run_resumes_with_its_cached_features(
    folders, source, tmp_path, capsys, phase
):
    options = recipe_options(
        folders, source, tmp_path / "run", epochs=2, patience=5, finetune_epochs=2, verbose=0
    )
    with pytest.raises(KeyboardInterrupt):
        ik.train(extra_callbacks=[Interrupt(phase)], **options)
    assert (tmp_path / "run" / "backup").is_dir()
    with pytest.raises(UsageError, match="interrupted run with different settings"):
        ik.train(**dict(options, image_size=SIZE + 8))
    capsys.readouterr()
    result = ik.train(**options)
    printed = capsys.readouterr().out
    assert "Computing" not in printed  # the features of the first attempt
    assert ("Phase 1" in printed) == (phase == 1)  # the second phase resumes from its backup
    history = read_history(str(tmp_path / "run" / "history.csv"))
    assert history["epoch"] == [0, 1, 2, 3] and history["phase"] == [1, 1, 2, 2]
    assert result.epochs == 4 and not (tmp_path / "run" / "backup").exists()


@pytest.mark.slow
def test_pretrained_backbone_beats_random_weights(quickstart_run, folders, tmp_path, source):
    """The quickstart's model (shapes at 64 px) stands in for ImageNet weights: the recipe from
    it classifies the four-class folder far better than the same recipe from random weights."""
    scores = {}
    for name, weights in (("pretrained", str(quickstart_run.checkpoint)), ("random", source)):
        options = recipe_options(folders, weights, tmp_path / name, epochs=15, finetune_epochs=1)
        result = ik.train(verbose=0, **options)
        scores[name] = result.best_val_top1
    assert scores["pretrained"] >= 0.8 and scores["pretrained"] > scores["random"] + 0.25, scores


@pytest.mark.slow
def test_both_phases_run_under_a_mirrored_strategy(shapes_data_dir, tmp_path):
    """Two logical CPUs in a subprocess (tests/_finetune_worker.py): the features cached under
    the strategy equal the backbone's run without it, and the phases freeze what they freeze."""
    root = pathlib.Path(__file__).resolve().parents[1]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    worker = [sys.executable, str(root / "tests" / "_finetune_worker.py")]
    run = subprocess.run(
        [*worker, "--out", str(tmp_path), "--data-dir", str(shapes_data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["replicas"] == result["model_replicas"] == 2
    assert result["phases"] == [1, 1, 2]
    assert result["reused"]  # the run's cache has the key of the source's backbone
    assert result["feature_difference"] <= 1e-5 * max(1.0, result["feature_scale"])
    kept, changed = set(result["kept"]), set(result["changed"])
    assert not set(result["frozen"]) & changed and "conv1" in kept
    assert not any(name.endswith("_bn") for name in changed)  # BatchNorm stays as it was
    # The recipe's default unfreeze_from: inception_5a.
    assert "fc" in changed and {"inception_5a_3x3", "inception_5b_1x1"} <= changed, changed
    assert not any(name.startswith(("inception_3", "inception_4")) for name in changed)


# --------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options, message",
    [
        (dict(), "needs `weights`"),
        (dict(weights="W", unfreeze_from="pool9"), "must be a layer of Table 1"),
        (dict(weights="W", freeze_until="inception_5b"), "leave `freeze_until` unset"),
        (dict(weights="W", feature_views=0), "`feature_views` must be at least 1"),
        (dict(weights="W", finetune_epochs=-1), "`finetune_epochs` must be >= 0"),
        (dict(weights="W", strategy="multi-worker"), "runs on one machine"),
    ],
)
def test_bad_settings_are_refused_in_one_line(options, message, source):
    options = {k: (source if v == "W" else v) for k, v in options.items()}
    with pytest.raises(UsageError, match=message):
        TrainConfig(recipe="finetune", variant="bn", **options)


def test_unfreeze_from_belongs_to_the_finetune_recipe_and_fit_refuses_it(source):
    with pytest.raises(UsageError, match="finetune recipe's"):
        TrainConfig(unfreeze_from="inception_5a")
    config = TrainConfig(recipe="finetune", weights=source)
    assert config.unfreeze_from == "inception_5a" and config.optimizer == "adamw"
    empty = tf.data.Dataset.from_tensors((tf.zeros([1, SIZE, SIZE, 3]), tf.zeros([1], tf.int32)))
    with pytest.raises(UsageError, match="run it with train"):
        ik.fit(config, empty, empty, 2)


def test_a_second_phase_without_an_epoch_length_is_refused_before_anything_is_written(
    source, tmp_path
):
    from inception_keras.data import Data
    from inception_keras.decoding import DecodeStats

    images = tf.zeros([0, SIZE, SIZE, 3])
    empty = tf.data.Dataset.from_tensor_slices((images, tf.zeros([0], tf.int32))).batch(4)
    unknown = empty.filter(lambda *_: True)  # a set that skips files: its length is unknown
    config = TrainConfig(recipe="finetune", weights=source, output_dir=str(tmp_path / "run"))
    for train, message in ((empty, "it is empty"), (unknown, "it is unknown: set finetune_epochs")):
        data = Data(train, empty, ("a", "b"), None, 0, "test", DecodeStats(1, 1))
        with pytest.raises(UsageError, match=message):
            finetune.fit_finetune(config, DataConfig(), data)
        assert not (tmp_path / "run").exists()


def test_the_recipe_crops_half_the_image_or_more_unless_told(source, folders):
    """The finetune recipe's data default (recipes.RECIPE_DATA_DEFAULTS), under explicit options."""
    _, data = run_configs(recipe="finetune", weights=source)
    assert data.augment.area_range == (0.5, 1.0)
    _, data = run_configs(recipe="finetune", weights=source, area_range=(0.2, 1.0))
    assert data.augment.area_range == (0.2, 1.0)
    _, data = run_configs(recipe="modern")
    assert data.augment.area_range == (0.08, 1.0)  # the paper's
    _, data = run_configs(recipe="finetune", weights=source, augment=False)
    assert data.augment is None
    given = DataConfig(dataset=str(folders[0]))
    assert run_configs(recipe="finetune", weights=source, data_config=given)[1].augment == (
        given.augment
    )

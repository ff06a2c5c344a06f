import copy
import dataclasses
import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from _pictures import curves_pixels, written_curves

import inception_keras as ik
from inception_keras import training
from inception_keras.callbacks import AtomicBackupAndRestore, EpochHistory, training_callbacks
from inception_keras.data import DataConfig
from inception_keras.errors import UsageError
from inception_keras.preprocessing import AugmentConfig
from inception_keras.schedules import WarmupCosineDecay
from inception_keras.training import (
    TrainConfig,
    compile_for_training,
    fit,
    learning_rate_schedule,
    read_history,
    run_configs,
    training_targets,
)

SIZE, CLASSES = 64, 4


def small_dataset(n=32, batch=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (n, SIZE, SIZE, 3)).astype("float32")
    y = rng.integers(0, CLASSES, n).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


@pytest.mark.slow
def test_total_loss_is_main_plus_weighted_aux_on_a_real_batch():
    config = TrainConfig(variant="paper", image_size=SIZE, aux_weight=0.3, epochs=1)
    model = ik.GoogLeNet(input_shape=(SIZE, SIZE, 3), classes=CLASSES, include_aux=True)
    compile_for_training(model, config, steps_per_epoch=4)
    batch = training_targets(small_dataset(n=8), CLASSES).take(1)
    logs = model.evaluate(batch, return_dict=True, verbose=0)
    expected = logs["predictions_loss"] + 0.3 * logs["aux1_loss"] + 0.3 * logs["aux2_loss"]
    assert logs["loss"] == pytest.approx(expected, rel=1e-5)
    assert logs["aux1_loss"] > 0.1 and logs["loss"] > logs["predictions_loss"] * 1.05
    # Validation batches count the main head only.
    val = model.evaluate(
        training_targets(small_dataset(n=8), CLASSES, validation=True).take(1),
        return_dict=True,
        verbose=0,
    )
    assert val["loss"] == pytest.approx(logs["predictions_loss"], rel=1e-5)
    # Metrics are the main head's only.
    assert {k for k in logs if "top" in k} == {"predictions_top1", "predictions_top5"}


def test_paper_recipe():
    config = TrainConfig(recipe="paper", learning_rate=0.05, epochs=40)
    model = ik.GoogLeNet(input_shape=(SIZE, SIZE, 3), classes=CLASSES, include_aux=True)
    compile_for_training(model, config, steps_per_epoch=10)
    opt = model.optimizer
    assert isinstance(opt, keras.optimizers.SGD) and opt.momentum == pytest.approx(0.9)
    assert opt.use_ema
    schedule = opt._learning_rate
    assert float(schedule(79)) == pytest.approx(0.05)  # epoch 7: not yet
    assert float(schedule(80)) == pytest.approx(0.05 * 0.96)  # 4% lower after 8 epochs
    assert float(schedule(160)) == pytest.approx(0.05 * 0.96**2)
    clone = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert float(clone(160)) == pytest.approx(float(schedule(160)))


def test_modern_recipe():
    config = TrainConfig(recipe="modern", epochs=10, learning_rate=1e-3)
    assert config.optimizer == "adamw" and config.label_smoothing == 0.1 and config.weight_decay > 0
    schedule = learning_rate_schedule(config, steps_per_epoch=100)
    assert float(schedule(0)) == pytest.approx(0.0)
    assert float(schedule(100)) == pytest.approx(1e-3)  # end of the 1-epoch warm-up
    # Cosine from the peak at step 100 to 0 at step 1000: half-way (step 550) is half the peak.
    assert float(schedule(550)) == pytest.approx(5e-4, rel=1e-4)
    assert float(schedule(999)) < 1e-7
    # The same curve as Keras' own warm-up + cosine (which computes it with a graph `cond`).
    keras_schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=900, warmup_target=1e-3, warmup_steps=100
    )
    for step in (0, 1, 37, 99, 100, 101, 420, 999, 1000, 5000):
        assert float(schedule(step)) == pytest.approx(float(keras_schedule(step)), abs=1e-9), step
    clone = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert float(clone(420)) == pytest.approx(float(schedule(420)))
    # Overrides win over the recipe.
    assert TrainConfig(recipe="modern", label_smoothing=0.0).label_smoothing == 0.0


def test_adamw_step_computes_the_schedule_once_and_right():
    """AdamW asks for the learning rate once per variable (for weight decay) and once for the
    update; the traced step must hold one copy of the schedule, and every update still uses the
    schedule's value at the step being taken."""
    schedule = WarmupCosineDecay(1e-2, decay_steps=90, warmup_steps=10)
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=0.5)
    variables = [keras.Variable(np.full((3,), 2.0, "float32")) for _ in range(12)]
    optimizer.build(variables)

    @tf.function
    def step():
        optimizer.apply([tf.zeros((3,))] * len(variables), variables)

    graph = step.get_concrete_function().graph
    assert [op.type for op in graph.get_operations()].count("Cos") == 1
    # Zero gradients: each step only decays, w <- w * (1 - 0.5 * lr(step)), the hand oracle.
    expected = 2.0
    for k in range(15):
        expected *= 1 - 0.5 * float(schedule(k))
        step()
        assert int(optimizer.iterations) == k + 1
    for v in variables:
        np.testing.assert_allclose(v.numpy(), expected, rtol=1e-6)
    clone = copy.deepcopy(schedule)  # copies carry the settings, not a traced tensor
    assert float(clone(50)) == pytest.approx(float(schedule(50)))


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(recipe="fast"), "recipe"),
        (dict(precision="int8"), "precision"),
        (dict(optimizer="rmsprop"), "optimizer"),
        (dict(epochs=0), "epochs"),
        (dict(ema_momentum=1.0), "ema_momentum"),
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(steps_per_execution=0), "steps_per_execution"),
        # Keras runs whole calls: 10 steps in calls of 4 would be 12 a schedule counts as 10.
        (dict(steps_per_epoch=10, steps_per_execution=4), "steps_per_epoch"),
    ],
)
def test_bad_config(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        TrainConfig(**kwargs)


@pytest.mark.slow
def test_fit_writes_checkpoints_logs_and_summary(tmp_path):
    config = TrainConfig(
        variant="bn",
        image_size=SIZE,
        epochs=2,
        recipe="modern",
        ema_momentum=0.9,
        output_dir=str(tmp_path / "run"),
    )
    written = []  # after each epoch: history.csv, curves.png and the optimizer's step

    class AfterEachEpoch(keras.callbacks.Callback):  # runs after the package's callbacks
        def on_epoch_end(self, epoch, logs=None):
            steps = int(self.model.optimizer.iterations)
            written.append((*written_curves(tmp_path / "run"), steps))

    result = fit(
        config,
        small_dataset(),
        small_dataset(seed=1),
        CLASSES,
        verbose=0,
        extra_callbacks=[AfterEachEpoch()],
    )
    assert result.epochs == 2
    history = read_history(tmp_path / "run" / "history.csv")
    assert history["epoch"] == [0.0, 1.0]
    # curves.png after each epoch shows that epoch's history.csv, all of it: drawn afresh from
    # those rows it gives the same pixels, and without the last row it would not.
    schedule = learning_rate_schedule(config, steps_per_epoch=4)
    for epoch, (rows, picture, steps) in enumerate(written):
        assert rows["epoch"] == [float(e) for e in range(epoch + 1)]
        np.testing.assert_array_equal(picture, curves_pixels(rows, tmp_path / "run"))
        # The learning rate logged is the schedule's at the epoch's end.
        assert steps == 4 * (epoch + 1)
        assert rows["learning_rate"][epoch] == pytest.approx(float(schedule(steps)), rel=1e-6)
    rows, picture, _ = written[-1]
    fewer = {column: values[:-1] for column, values in rows.items()}
    assert not np.array_equal(picture, curves_pixels(fewer, tmp_path / "run"))
    assert all(v > 0 for v in history["images_per_sec"])
    for name in ("best.keras", "last.keras", "train_config.json"):
        assert (tmp_path / "run" / name).exists()
    # The reported best is what best.keras scores on the validation set, evaluated afresh.
    best = keras.saving.load_model(tmp_path / "run" / "best.keras", safe_mode=True)
    images = np.concatenate([x for x, _ in small_dataset(seed=1)])
    labels = np.concatenate([y for _, y in small_dataset(seed=1)])
    top1 = np.mean(best.predict(images, verbose=0)[0].argmax(-1) == labels)
    assert result.best_val_top1 == pytest.approx(top1, abs=1e-6)
    last = keras.saving.load_model(tmp_path / "run" / "last.keras", safe_mode=True)
    assert len(last.outputs) == 3
    assert not (tmp_path / "run" / "backup").exists()  # removed after a finished run
    assert "best validation top-1" in result.summary()


def test_steps_per_epoch_in_whole_calls_is_checked_before_anything_is_written(tmp_path):
    config = TrainConfig(
        variant="bn", image_size=SIZE, steps_per_execution=4, output_dir=str(tmp_path / "run")
    )
    with pytest.raises(UsageError, match=r"`steps_per_epoch` \(6\) must be a multiple"):
        fit(config, small_dataset(), small_dataset(), CLASSES, steps_per_epoch=6, verbose=0)
    assert not (tmp_path / "run").exists()


def test_an_average_longer_than_the_run_is_warned_about_before_anything_is_written(tmp_path):
    a_file = tmp_path / "a_file"  # the run stops at the output folder, right after the check
    a_file.write_text("mine")
    config = TrainConfig(variant="bn", image_size=SIZE, epochs=2, output_dir=str(a_file))
    steps = 2 * int(small_dataset().cardinality())
    expected = f"EMA momentum 0.999 averages over about 1000 steps, and this run takes {steps}"
    with pytest.warns(UserWarning, match=expected), pytest.raises(UsageError, match="a file"):
        fit(config, small_dataset(), small_dataset(), CLASSES, verbose=0)
    for quiet in (dict(ema_momentum=1 - 3 / steps), dict(ema=False)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(UsageError, match="a file"):
                fit(dataclasses.replace(config, **quiet), small_dataset(), small_dataset(), CLASSES)
    # A run of three steps or fewer has no momentum to suggest: only turning EMA off.
    with pytest.warns(UserWarning, match=r"takes 2: .*\. Turn EMA off \(--no-ema\)\.$"):
        with pytest.raises(UsageError, match="a file"):
            fit(dataclasses.replace(config, epochs=1), small_dataset(16), small_dataset(8), CLASSES)


@pytest.mark.slow
def test_every_epoch_runs_the_steps_its_schedule_counts_and_logs_only_what_it_computes(
    tmp_path, capsys
):
    # Five batches of unknown length (filtered, like a set that skips unreadable files), trained
    # in calls of 4 steps: Keras runs whole calls, 2 a pass, so an epoch is 8 steps, and the
    # warm-up of one epoch (the modern recipe's) must end exactly at the end of epoch 1.
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (40, 32, 32, 3)).astype("float32")
    y = rng.integers(0, CLASSES, 40).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).filter(lambda *_: True)
    config = TrainConfig(
        variant="bn",
        image_size=32,
        epochs=2,
        recipe="modern",
        warmup_epochs=1.0,
        steps_per_execution=4,
        output_dir=str(tmp_path / "run"),
    )
    rates = []

    class LearningRate(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            rates.append(float(self.model.optimizer.learning_rate))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit(
            config,
            data,
            data,
            CLASSES,
            train_examples=40,
            verbose=2,
            extra_callbacks=[LearningRate()],
        )
    assert int(result.model.optimizer.iterations) == 2 * 8
    assert rates[0] == pytest.approx(config.learning_rate)  # the peak: warm-up just ended
    assert rates[1] == pytest.approx(0.0, abs=1e-9)  # the cosine's end: the last step run
    # Keras' noise about the data: its ignored shuffle flag and the validation pass's end.
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "ran out of data" in m or "shuffle=True" in m], messages
    # Validation weights the aux heads 0: no always-zero aux losses anywhere; its loss is the
    # main head's.
    out = capsys.readouterr().out
    epoch_lines = [line for line in out.splitlines() if " - loss: " in line or "val_loss" in line]
    assert [line.split(" - ")[0] for line in epoch_lines] == ["8/8", "8/8"], out
    assert "val_aux" not in out
    history = read_history(tmp_path / "run" / "history.csv")
    assert not [key for key in history if key.startswith("val_aux")]
    assert {"aux1_loss", "aux2_loss", "val_loss", "val_predictions_top1"} <= set(history)
    assert history["val_loss"] == pytest.approx(history["val_predictions_loss"], rel=1e-5)
    best = json.loads((tmp_path / "run" / "best_score.json").read_text())
    assert "val_predictions_top1" in best and not [k for k in best if k.startswith("val_aux")]


@pytest.mark.slow
def test_fit_restores_the_global_policy_and_random_state(tmp_path):
    before = keras.mixed_precision.global_policy().name
    np.random.seed(123)
    expected_draw = np.random.get_state()[1][:4].copy()
    config = TrainConfig(
        variant="bn",
        image_size=32,
        epochs=1,
        precision="mixed_bfloat16",
        output_dir=str(tmp_path / "run"),
        ema=False,
    )
    fit(
        config,
        small_dataset(n=8).map(lambda x, y: (tf.image.resize(x, (32, 32)), y)),
        small_dataset(n=8).map(lambda x, y: (tf.image.resize(x, (32, 32)), y)),
        CLASSES,
        verbose=0,
    )
    assert keras.mixed_precision.global_policy().name == before == "float32"
    assert (
        ik.GoogLeNet(input_shape=(32, 32, 3), classes=2).get_layer("conv1").compute_dtype
        == "float32"
    )
    np.testing.assert_array_equal(np.random.get_state()[1][:4], expected_draw)
    # On error too: an endless training set without steps_per_epoch fails after the policy is set.
    with pytest.raises(ValueError, match="endless"):
        fit(config, small_dataset(n=8).repeat(), small_dataset(n=8), CLASSES, verbose=0)
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["paper", "bn"])
@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_both_variants_train_in_reduced_precision(variant, precision):
    # conftest.py's autouse fixture restores the global policy afterwards.
    keras.mixed_precision.set_global_policy(precision)
    config = TrainConfig(
        variant=variant, image_size=32, precision=precision, epochs=1, learning_rate=0.01
    )
    model = ik.GoogLeNet(
        input_shape=(32, 32, 3), classes=CLASSES, include_aux=True, variant=variant
    )
    compile_for_training(model, config, steps_per_epoch=2)
    compute = "bfloat16" if precision == "mixed_bfloat16" else "float16"
    assert model.get_layer("inception_3a_5x5").compute_dtype == compute
    if variant == "paper":  # the LRN's output keeps the policy's dtype
        assert keras.backend.standardize_dtype(model.get_layer("norm1").output.dtype) == compute
    assert model.get_layer("predictions").compute_dtype == "float32"
    x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    y = keras.utils.to_categorical(np.arange(8) % CLASSES, CLASSES)
    before = model.get_layer("conv1").kernel.numpy().copy()
    # float16's dynamic loss scale starts high: its first steps may overflow and be skipped.
    for _ in range(8):
        logs = model.train_on_batch(x, (y, y, y), return_dict=True)
        if not np.array_equal(model.get_layer("conv1").kernel.numpy(), before):
            break
    assert np.isfinite(logs["loss"])
    assert not np.array_equal(model.get_layer("conv1").kernel.numpy(), before)


def test_run_configs_combines_preset_options_and_configs():
    config, data = run_configs("quickstart", epochs=2, augment=True, flip=False)
    assert (config.epochs, config.image_size, data.image_size) == (2, 64, 64)
    assert (data.augment.area_range, data.augment.flip) == ((0.08, 1.0), False)
    with pytest.raises(UsageError, match="flip.*augmentation off"):
        run_configs("quickstart", flip=False)  # the preset trains without augmentation
    # A base config, then options: a new recipe brings its own defaults unless given.
    config, _ = run_configs(config=TrainConfig(recipe="paper"), recipe="modern")
    assert (config.optimizer, config.learning_rate, config.weight_decay) == ("adamw", 2e-3, 0.05)
    config, _ = run_configs(config=TrainConfig(), recipe="modern", learning_rate=0.5)
    assert (config.optimizer, config.learning_rate) == ("adamw", 0.5)
    _, data = run_configs(data_config=DataConfig(dataset="x", augment=None), epochs=2)
    assert (data.dataset, data.augment) == ("x", None)
    with pytest.raises(UsageError, match="unknown training option.*colour"):
        run_configs(colour="red")
    with pytest.raises(UsageError, match="unknown preset 'fast'"):
        run_configs("fast")
    with pytest.raises(UsageError, match="hue_delta.*augmentation off"):
        run_configs(augment=False, hue_delta=0.1)


def test_data_config_spellings():
    assert DataConfig(cache="/tmp/c").cache_dir == "/tmp/c"  # the former spelling of cache_dir
    assert DataConfig(cache_dir="/tmp/c").cache is True
    assert DataConfig(augment=False).augment is None
    assert DataConfig(augment=True).augment == AugmentConfig()


def _snapshot(directory):
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_a_finished_run_is_refused_and_left_untouched(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("best.keras", "last.keras", "history.csv", "train_config.json"):
        (out / name).write_bytes(b"from the first run")
    before = _snapshot(out)
    config = TrainConfig(image_size=SIZE, epochs=1, output_dir=str(out))
    with pytest.raises(UsageError, match=r"holds a finished run \(best.keras, last.keras"):
        fit(config, small_dataset(), small_dataset(), CLASSES)
    assert _snapshot(out) == before


def test_an_interrupted_run_is_not_touched_by_a_command_it_refuses(tmp_path):
    out = tmp_path / "run"
    (out / "backup").mkdir(parents=True)
    (out / "train_config.json").write_text(
        '{"variant": "paper", "image_size": 64, "num_classes": 4, "epochs": 1}'
    )
    (out / "data_config.json").write_text('{"dataset": "mine"}')
    (out / "history.csv").write_text("epoch,loss\n0,1.5\n")
    before = _snapshot(out)
    # Settings that differ from the interrupted run's, invalid or not: refused before anything
    # is written; and an input too small for the model, with no run to resume there.
    with pytest.raises(UsageError, match="image_size 64, now 16"):
        fit(TrainConfig(image_size=16, epochs=1, output_dir=str(out)), *[small_dataset()] * 2, 4)
    with pytest.raises(UsageError, match="interrupted run with different settings.*image_size 64"):
        fit(TrainConfig(image_size=48, epochs=1, output_dir=str(out)), *[small_dataset()] * 2, 4)
    assert _snapshot(out) == before
    with pytest.raises(UsageError, match="at least 32"):
        fit(TrainConfig(image_size=16, output_dir=str(tmp_path / "new")), *[small_dataset()] * 2, 4)
    assert not (tmp_path / "new").exists()


def test_an_output_dir_that_is_a_file_is_refused(tmp_path):
    out = tmp_path / "a_file"
    out.write_text("mine")
    with pytest.raises(UsageError, match="is a file"):
        fit(TrainConfig(image_size=SIZE, output_dir=str(out)), *[small_dataset()] * 2, CLASSES)
    assert out.read_text() == "mine"


@pytest.mark.slow
def test_train_hands_its_extra_callbacks_to_fit(monkeypatch, tmp_path):
    seen = {}

    def fake_fit(config, *args, **kwargs):
        seen.update(kwargs, config=config)
        return training.TrainResult(1, 0.0, 0.0, 0.0, "", "", config.output_dir)

    monkeypatch.setattr(training, "fit", fake_fit)
    marker = keras.callbacks.Callback()
    training.train(
        preset="quickstart",
        dataset="shapes/smoke",
        data_dir=str(tmp_path),
        image_size=32,
        output_dir=str(tmp_path / "run"),
        extra_callbacks=[marker],
    )
    assert seen["extra_callbacks"] == [marker] and seen["config"].image_size == 32


def test_a_resume_writes_the_checkpoints_a_kill_left_unwritten(tmp_path):
    # A run killed after epoch 1's backup but before its checkpoints: best.keras and
    # best_score.json still hold epoch 0 (0.2), history.csv has epoch 1 at 0.5.
    out = tmp_path / "run"
    out.mkdir()
    raw, averaged = np.full((3, 2), 1.0, "float32"), np.full((3, 2), 7.0, "float32")

    def tiny_model():
        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Dense(2, use_bias=False, name="dense")(inputs))
        model.compile(keras.optimizers.SGD(0.0, use_ema=True), "mse")
        model.optimizer.build(model.trainable_variables)
        return model

    killed = tiny_model()
    killed.get_layer("dense").kernel.assign(np.zeros((3, 2), "float32"))  # epoch 0's best.keras
    killed.save(out / "best.keras")
    (out / "best_score.json").write_text('{"val_predictions_top1": 0.2, "epoch": 0}')
    (out / "history.csv").write_text("epoch,val_predictions_top1\n0,0.2\n1,0.5\n")
    killed.get_layer("dense").kernel.assign(raw)
    killed.optimizer._model_variables_moving_average[0].assign(averaged)
    backup = AtomicBackupAndRestore(str(out / "backup"))
    backup.set_model(killed)
    backup._current_epoch, backup._last_batch_seen = 2, 0
    backup._save_model()

    resumed = tiny_model()
    config = TrainConfig(output_dir=str(out), ema_momentum=0.9)
    callbacks = [cb for cb in training_callbacks(config, 1) if not isinstance(cb, EpochHistory)]
    x, y = np.zeros((2, 3), "float32"), np.zeros((2, 2), "float32")
    resumed.fit(x, y, epochs=2, callbacks=callbacks, verbose=0)  # nothing left to train

    assert json.loads((out / "best_score.json").read_text()) == {
        "val_predictions_top1": 0.5,
        "epoch": 1,
    }
    for name in ("best.keras", "last.keras"):  # the averaged weights, not the raw ones
        saved = keras.saving.load_model(out / name)
        np.testing.assert_array_equal(saved.get_layer("dense").kernel.numpy(), averaged)


def test_an_empty_training_set_is_named_as_such(tmp_path):
    config = TrainConfig(image_size=SIZE, ema=False, output_dir=str(tmp_path / "run"))
    with pytest.raises(UsageError, match="^the training set is empty.$"):
        fit(config, small_dataset().take(0), small_dataset(), CLASSES, batch_size=8)
    assert not (tmp_path / "run").exists()


def test_the_momentum_advised_for_a_long_run_is_not_rounded_up_to_one():
    config = TrainConfig(ema_momentum=0.9999)  # about 10,000 steps
    with pytest.warns(UserWarning, match=r"this run takes 7000: .* at most 0\.99957 "):
        training._warn_if_the_average_lags(config, 7000)


def test_the_run_records_its_data_folders_absolute_for_export_and_verify(tmp_path, monkeypatch):
    from inception_keras.export.versioned import run_data_config
    from inception_keras.run_folder import prepare_run_folder

    (tmp_path / "photos" / "cat").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    config = TrainConfig(image_size=SIZE, output_dir="run")
    folders = DataConfig(dataset="photos", validation_dir="val", cache_dir="cache")
    prepare_run_folder(config, False, 1, ["cat"], folders)
    # A later export or verify, run from another folder, finds the same data.
    monkeypatch.chdir(tmp_path / "run")
    saved = run_data_config(str(tmp_path / "run" / "best.keras"))
    assert saved.dataset == str(tmp_path / "photos")
    assert (saved.validation_dir, saved.cache_dir) == (
        str(tmp_path / "val"),
        str(tmp_path / "cache"),
    )
    # A tfds name stays a name, a local data_dir becomes absolute and a remote one stays.
    monkeypatch.chdir(tmp_path)
    for data_dir, recorded in (("tfds", str(tmp_path / "tfds")), ("gs://b/tfds", "gs://b/tfds")):
        prepare_run_folder(config, False, 8, data_config=DataConfig(data_dir=data_dir))
        saved = run_data_config("run/best.keras")
        assert (saved.dataset, saved.data_dir, saved.cache_dir) == ("shapes", recorded, None)
    # A home folder is expanded, and an empty cache_dir (no file cache) stays empty.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    kept = DataConfig(data_dir="~/tfds", cache_dir="", cache=False)
    prepare_run_folder(config, False, 8, data_config=kept)
    saved = run_data_config("run/best.keras")
    assert (saved.data_dir, saved.cache_dir, saved.cache) == (
        str(tmp_path / "home/tfds"),
        "",
        False,
    )

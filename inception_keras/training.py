"""Training with ``model.fit``: the paper's loss weighting, its recipe, checkpoints and resume.

The training model has three outputs (``predictions``, ``aux1``, ``aux2``); the loss is
``main + 0.3 * aux1 + 0.3 * aux2`` (Section 5 of the paper). Metrics (top-1, top-5) are reported
for the main head only, and validation counts the main head only: the validation set carries
sample weights (1, 0, 0) for the three outputs, so ``val_loss`` is the main head's loss.

Recipes:
- ``paper``: SGD with momentum 0.9, learning rate x0.96 every 8 epochs (a serializable Keras
  schedule), Polyak averaging through the optimizer's EMA; the averaged weights are used for
  validation, checkpoints and export (``keras.callbacks.SwapEMAWeights``).
- ``modern``: AdamW with weight decay, linear warm-up then cosine decay, label smoothing, EMA.
"""

import contextlib
import csv
import dataclasses
import functools
import json
import math
import os
import random
import statistics
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from inception_keras import pretrained
from inception_keras.data import DataConfig, load_data
from inception_keras.distribute import STRATEGIES, is_chief, make_strategy, with_auto_shard
from inception_keras.errors import UsageError
from inception_keras.files import DATA_CONFIG_FILE, TRAIN_CONFIG_FILE
from inception_keras.model import AUX_LOSS_WEIGHT, OUTPUT_NAMES, GoogLeNet
from inception_keras.preprocessing import AugmentConfig
from inception_keras.recipes import PRESETS, RECIPE_DEFAULTS, RECIPES

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass
class TrainConfig:
    """Everything that shapes a training run. ``None`` fields take the recipe's default.

    Attributes:
        variant: ``"paper"``, ``"bn"``, ``"slim"`` or ``"naive"`` (see
            :func:`inception_keras.GoogLeNet`);
            with ``weights``, the weights' variant.
        image_size: square input size in pixels.
        epochs: number of epochs.
        recipe: ``"paper"`` or ``"modern"``.
        optimizer: ``"sgd"`` (momentum) or ``"adamw"``; unset: the recipe's.
        learning_rate: initial (peak, with warm-up) learning rate; unset: the recipe's.
        momentum: SGD momentum (the paper: 0.9).
        lr_decay_rate, lr_decay_epochs: the paper's step schedule (x0.96 every 8 epochs).
        warmup_epochs: linear warm-up length (``modern`` recipe); unset: the recipe's.
        weight_decay: decoupled weight decay; unset: the recipe's.
        label_smoothing: label smoothing of the cross-entropy; unset: the recipe's.
        aux_weight: loss weight of each auxiliary classifier (the paper: 0.3; 0 disables them).
        ema: Polyak averaging of the weights (optimizer EMA).
        ema_momentum: EMA decay per step; pick it so 1 / (1 - momentum) is well under the number
            of training steps, or the average lags behind the model.
        precision: ``float32``, ``mixed_float16`` or ``mixed_bfloat16``.
        jit_compile: compile the train step with XLA.
        strategy: ``auto`` (all local GPUs when there are several), ``default``, ``mirrored``
            or ``multi-worker`` (hosts from ``TF_CONFIG``); the batch size is global.
        steps_per_execution: train steps per ``tf.function`` call.
        steps_per_epoch: training steps per epoch; unset: one pass over the training set (an
            endless ``shapes_stream`` needs it).
        output_dir: checkpoints, logs and the resume backup go here.
        seed: seeds weights and data order.
        weights: fine-tune from these weights: ``"bvlc"``, ``"slim"`` (published ImageNet
            weights, downloaded once), a ``.caffemodel``, a TF-slim checkpoint prefix, or a
            ``.keras`` GoogLeNet (e.g. from ``inception-keras convert``). Every layer whose shape
            matches starts from them (the backbone, and the aux heads' convolution and first FC at
            224 pixels); the classifiers are new, sized for the data set's classes.
        freeze_until: with ``weights``, keep this layer and every layer before it fixed, e.g.
            ``inception_5b`` (only the classifiers train) or ``inception_4e``; frozen BatchNorm
            layers run in inference mode.
    """

    variant: str = "paper"
    image_size: int = 224
    epochs: int = 30
    recipe: str = "paper"
    optimizer: str | None = None
    learning_rate: float | None = None
    momentum: float = 0.9
    lr_decay_rate: float = 0.96
    lr_decay_epochs: float = 8.0
    warmup_epochs: float | None = None
    weight_decay: float | None = None
    label_smoothing: float | None = None
    aux_weight: float = AUX_LOSS_WEIGHT
    ema: bool = True
    ema_momentum: float = 0.999
    precision: str = "float32"
    jit_compile: bool = False
    strategy: str = "auto"
    steps_per_execution: int = 1
    steps_per_epoch: int | None = None
    output_dir: str = "runs/googlenet"
    seed: int = 0
    weights: str | None = None
    freeze_until: str | None = None

    def __post_init__(self):
        if self.recipe not in RECIPES:
            raise UsageError(f"`recipe` must be one of {RECIPES}; got {self.recipe!r}.")
        if self.precision not in PRECISIONS:
            raise UsageError(f"`precision` must be one of {PRECISIONS}; got {self.precision!r}.")
        for name, value in RECIPE_DEFAULTS[self.recipe].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.optimizer not in ("sgd", "adamw"):
            raise UsageError(f"`optimizer` must be 'sgd' or 'adamw'; got {self.optimizer!r}.")
        if self.epochs < 1:
            raise UsageError(f"`epochs` must be at least 1; got {self.epochs}.")
        if not 0 <= self.aux_weight:
            raise UsageError(f"`aux_weight` must be >= 0; got {self.aux_weight}.")
        if not 0 < self.ema_momentum < 1:
            raise UsageError(f"`ema_momentum` must be in (0, 1); got {self.ema_momentum}.")
        if self.strategy not in STRATEGIES:
            raise UsageError(f"`strategy` must be one of {STRATEGIES}; got {self.strategy!r}.")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise UsageError(f"`steps_per_epoch` must be at least 1; got {self.steps_per_epoch}.")
        if not self.learning_rate > 0:
            raise UsageError(f"`learning_rate` must be > 0; got {self.learning_rate}.")
        if self.freeze_until and not self.weights:
            raise UsageError("`freeze_until` needs `weights` to start from.")
        if self.weights:
            self.variant = pretrained.weights_variant(self.weights)


def learning_rate_schedule(config, steps_per_epoch):
    """The recipe's schedule, a serializable ``keras.optimizers.schedules.LearningRateSchedule``."""
    total = config.epochs * steps_per_epoch
    if config.recipe == "paper":
        return keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate,
            decay_steps=max(1, round(config.lr_decay_epochs * steps_per_epoch)),
            decay_rate=config.lr_decay_rate,
            staircase=True,
        )
    warmup = min(int(config.warmup_epochs * steps_per_epoch), total - 1)
    return keras.optimizers.schedules.CosineDecay(
        0.0,
        decay_steps=max(1, total - warmup),
        warmup_target=config.learning_rate,
        warmup_steps=warmup,
    )


def build_optimizer(config, steps_per_epoch):
    schedule = learning_rate_schedule(config, steps_per_epoch)
    common = dict(learning_rate=schedule, use_ema=config.ema, ema_momentum=config.ema_momentum)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(
            momentum=config.momentum, weight_decay=config.weight_decay or None, **common
        )
    return keras.optimizers.AdamW(weight_decay=config.weight_decay, **common)


def compile_for_training(model, config, steps_per_epoch):
    """Compiles the three-output model: weighted losses, top-1/top-5 on the main head."""
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    model.compile(
        optimizer=build_optimizer(config, steps_per_epoch),
        loss={name: loss for name in OUTPUT_NAMES},
        loss_weights={"predictions": 1.0, "aux1": config.aux_weight, "aux2": config.aux_weight},
        metrics={
            "predictions": [
                keras.metrics.CategoricalAccuracy(name="top1"),
                keras.metrics.TopKCategoricalAccuracy(k=5, name="top5"),
            ]
        },
        jit_compile=config.jit_compile,
        steps_per_execution=config.steps_per_execution,
    )
    return model


def training_targets(dataset, num_classes, validation=False):
    """Maps ``(images, int labels)`` to the three-output model's ``(images, targets[, weights])``.

    Validation batches weight the aux outputs 0, so validation loss is the main head's.
    """

    def to_targets(images, labels):
        one_hot = tf.one_hot(tf.cast(labels, tf.int32), num_classes)
        targets = (one_hot,) * len(OUTPUT_NAMES)
        if not validation:
            return images, targets
        ones = tf.ones_like(labels, tf.float32)
        return images, targets, (ones, tf.zeros_like(ones), tf.zeros_like(ones))

    return dataset.map(to_targets, num_parallel_calls=tf.data.AUTOTUNE)


class Throughput(keras.callbacks.Callback):
    """Adds ``images_per_sec`` (training steps only, validation excluded) to each epoch's logs."""

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = batch_size

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._val_time, self._steps = time.perf_counter(), 0.0, 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps = batch + 1  # counted: a set that skips bad files has no known length

    def on_test_begin(self, logs=None):
        self._val_start = time.perf_counter()

    def on_test_end(self, logs=None):
        self._val_time += time.perf_counter() - self._val_start

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._start - self._val_time
        if logs is not None and elapsed > 0:
            logs["images_per_sec"] = self._steps * self.batch_size / elapsed


def callbacks(config, batch_size):
    """Resume backup, EMA swap, best/last checkpoints, logs — in an order that matters.

    BackupAndRestore comes before SwapEMAWeights so the backup holds the raw weights and the EMA
    slots as they are; the checkpoints come after it so they hold the averaged weights.
    """
    out = config.output_dir
    result = [
        keras.callbacks.BackupAndRestore(os.path.join(out, "backup")),
        keras.callbacks.TerminateOnNaN(),
        Throughput(batch_size),
    ]
    if config.ema:
        result.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    result += [
        keras.callbacks.ModelCheckpoint(
            os.path.join(out, "best.keras"),
            monitor="val_predictions_top1",
            mode="max",
            save_best_only=True,
        ),
        keras.callbacks.ModelCheckpoint(os.path.join(out, "last.keras")),
        keras.callbacks.CSVLogger(os.path.join(out, "history.csv"), append=True),
        keras.callbacks.TensorBoard(os.path.join(out, "logs"), write_graph=False),
    ]
    return result


def progress_verbosity(verbose="auto", stream=None):
    """Keras' ``verbose`` for ``model.fit``: ``"auto"`` is the progress bar (1) on a terminal and
    one line per epoch (2) anywhere else (a log file, CI, a pipe), where the bar's carriage-return
    redraws would pile up as unreadable text. Any other value is returned as it is.
    """
    if verbose != "auto":
        return verbose
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)  # replaced streams may lack it
    return 1 if isatty is not None and isatty() else 2


def read_history(path):
    """The CSV log as ``{column: [float per epoch]}``."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: [float(row[key]) for row in rows] for key in (rows[0] if rows else {})}


@dataclasses.dataclass
class TrainResult:
    """What a run produced, for the end-of-run summary."""

    epochs: int
    best_val_top1: float
    best_val_top5: float
    images_per_sec: float
    best_checkpoint: str
    last_checkpoint: str
    output_dir: str
    skipped_files: int = 0
    history: dict = dataclasses.field(default_factory=dict)
    model: keras.Model | None = None  # the trained three-output model (averaged weights)

    def summary(self):
        return "\n".join(
            [
                f"Trained {self.epochs} epochs; best validation top-1 {self.best_val_top1:.2%}, "
                f"top-5 {self.best_val_top5:.2%}; {self.images_per_sec:.1f} images/s (training).",
                f"Best checkpoint: {self.best_checkpoint}",
                f"Last checkpoint: {self.last_checkpoint}",
                f"Logs: {os.path.join(self.output_dir, 'history.csv')}, TensorBoard in "
                f"{os.path.join(self.output_dir, 'logs')}",
                f"Skipped unreadable files: {self.skipped_files}",
            ]
        )


@contextlib.contextmanager
def _restored_global_state():
    policy = keras.mixed_precision.global_policy()
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(policy)
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _restoring_global_state(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with _restored_global_state():
            return function(*args, **kwargs)

    return wrapper


@_restoring_global_state
def fit(
    config,
    train_dataset,
    val_dataset,
    num_classes,
    class_names=None,
    batch_size=None,
    steps_per_epoch=None,
    train_examples=None,
    strategy=None,
    extra_callbacks=(),
    verbose="auto",
):
    """Builds, compiles and trains GoogLeNet with aux heads on ``(images, int labels)`` batches.

    Args:
        config: a :class:`TrainConfig`.
        train_dataset, val_dataset: batched ``tf.data.Dataset`` of float32 images in [0, 255]
            ``[B, S, S, 3]`` and integer labels ``[B]``.
        num_classes: number of classes.
        class_names: optional names, written next to the checkpoints.
        batch_size: global batch size (for the throughput figure); read from the data if None.
        steps_per_epoch: overrides ``config.steps_per_epoch``; needed for endless (streamed)
            training sets.
        train_examples: size of the training set, for the schedule when its length is unknown.
        strategy: a ``tf.distribute.Strategy`` (default: the current one); batches are global.
        extra_callbacks: more Keras callbacks, run after the package's own.
        verbose: Keras' ``verbose``; ``"auto"``: a progress bar on a terminal, one line per
            epoch when stdout is a file or a pipe (see :func:`progress_verbosity`).

    Returns:
        A :class:`TrainResult`.

    The global dtype policy (``precision``) and the Python and NumPy random states (``seed``)
    are set for the run and restored on return or error: models built after it get the policy
    they would have had before. TensorFlow's global seed has no getter to restore: it stays
    ``seed``.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if steps_per_epoch is None:
        steps_per_epoch = config.steps_per_epoch
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        train_dataset, val_dataset = with_auto_shard(train_dataset), with_auto_shard(val_dataset)
        if not is_chief(strategy):
            # Only the chief's files count; the others write beside them instead of over them.
            resolver = strategy.cluster_resolver
            config = dataclasses.replace(
                config,
                output_dir=os.path.join(
                    config.output_dir, "workers", f"{resolver.task_type}_{resolver.task_id}"
                ),
            )
    os.makedirs(config.output_dir, exist_ok=True)
    history_csv = os.path.join(config.output_dir, "history.csv")
    if not os.path.exists(os.path.join(config.output_dir, "backup")) and os.path.exists(
        history_csv
    ):
        os.remove(history_csv)  # a fresh run (nothing to resume): its log starts empty
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(config.precision)
    if batch_size is None:  # costs one batch of the pipeline; callers that know it pass it
        batch_size = int(train_dataset.element_spec[0].shape[0] or 0) or int(
            next(iter(train_dataset.take(1)))[0].shape[0]
        )
    cardinality = int(train_dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY and steps_per_epoch is None:
        raise UsageError("the training set is endless (a stream): pass steps_per_epoch.")
    # The schedule needs the epoch length; a set that skips unreadable files has no known
    # cardinality, so fall back to its example count.
    schedule_steps = (
        steps_per_epoch
        or (cardinality if cardinality > 0 else None)
        or (math.ceil(train_examples / batch_size) if train_examples else None)
    )
    if not schedule_steps:
        raise UsageError(
            "the training set's length is unknown: pass steps_per_epoch or train_examples."
        )
    if cardinality == tf.data.UNKNOWN_CARDINALITY:
        # Keras takes one optimizer step too many per epoch on a set of unknown length (seen with
        # Keras 3.15: 18 steps for 2 epochs of 8 batches); an endless repeat with a fixed number
        # of steps per epoch avoids it. Each pass is still reshuffled.
        train_dataset, steps_per_epoch = train_dataset.repeat(), schedule_steps

    with strategy.scope():
        model = GoogLeNet(
            input_shape=(config.image_size, config.image_size, 3),
            classes=num_classes,
            include_aux=True,
            variant=config.variant,
        )
        if config.weights:
            pretrained.initialize_from(model, config.weights)
        if config.freeze_until:
            pretrained.freeze_until(model, config.freeze_until)
        compile_for_training(model, config, schedule_steps)
    with open(os.path.join(config.output_dir, TRAIN_CONFIG_FILE), "w") as f:
        json.dump(
            dict(
                dataclasses.asdict(config),
                num_classes=num_classes,
                class_names=list(class_names or []),
            ),
            f,
            indent=2,
        )

    model.fit(
        training_targets(train_dataset, num_classes),
        validation_data=training_targets(val_dataset, num_classes, validation=True),
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks(config, batch_size) + list(extra_callbacks),
        verbose=progress_verbosity(verbose),
    )
    # The CSV log spans the whole run, epochs before a resume included.
    history = read_history(history_csv)
    best = max(range(len(history["epoch"])), key=lambda i: history["val_predictions_top1"][i])
    return TrainResult(
        epochs=len(history["epoch"]),
        best_val_top1=history["val_predictions_top1"][best],
        best_val_top5=history["val_predictions_top5"][best],
        # The median epoch: the first one also pays for tracing and compilation.
        images_per_sec=statistics.median(history["images_per_sec"]),
        best_checkpoint=os.path.join(config.output_dir, "best.keras"),
        last_checkpoint=os.path.join(config.output_dir, "last.keras"),
        output_dir=config.output_dir,
        history=history,
        model=model,
    )


def run_configs(preset=None, config=None, data_config=None, **options):
    """A run's :class:`TrainConfig` and :class:`~inception_keras.data.DataConfig`, from one place.

    Values are taken, later ones winning, from: the dataclasses' defaults, ``config`` and
    ``data_config`` if given, the named ``preset`` (see :mod:`inception_keras.recipes`), and
    ``options``. Each option names a field of ``TrainConfig``, ``DataConfig`` or
    :class:`~inception_keras.preprocessing.AugmentConfig` (``area_range=(0.5, 1.0)``,
    ``flip=False`` ...); ``augment=False`` trains without augmentation. ``image_size`` and
    ``seed`` set both configs, so the model and the data agree. Unset recipe fields
    (``learning_rate``, ``optimizer`` ...) take the recipe's defaults.
    """
    if preset is not None and preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; known: {', '.join(sorted(PRESETS))}.")
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    data_fields = {f.name for f in dataclasses.fields(DataConfig)}
    augment_fields = {f.name for f in dataclasses.fields(AugmentConfig)}
    values = {**PRESETS.get(preset, {}), **options}
    unknown = sorted(set(values) - train_fields - data_fields - augment_fields)
    if unknown:
        raise UsageError(f"unknown training option(s): {', '.join(unknown)}.")

    def pick(fields, base):
        start = {f: getattr(base, f) for f in fields} if base is not None else {}
        return {**start, **{f: values[f] for f in fields if f in values}}

    augment = values.get("augment", data_config.augment if data_config else AugmentConfig())
    augment_values = pick(augment_fields, None)
    if augment is not None and augment is not False:
        base = augment if isinstance(augment, AugmentConfig) else AugmentConfig()
        augment = dataclasses.replace(base, **augment_values)
    else:
        if augment_values:
            raise UsageError(
                f"augmentation option(s) {', '.join(sorted(augment_values))} given with "
                "augmentation off."
            )
        augment = None
    train_values = pick(train_fields, config)
    if config is not None and "recipe" in values and values["recipe"] != config.recipe:
        # The base config holds its recipe's defaults; a new recipe brings its own.
        for name in RECIPE_DEFAULTS[config.recipe]:
            if name not in values:
                train_values[name] = None
    config = TrainConfig(**train_values)
    data_values = pick(data_fields - {"augment", "image_size", "seed"}, data_config)
    data_config = DataConfig(
        **data_values, augment=augment, image_size=config.image_size, seed=config.seed
    )
    return config, data_config


def train(
    config=None, data_config=None, steps_per_epoch=None, verbose="auto", *, preset=None, **options
):
    """Loads the data and trains (see :func:`fit`): the whole ``inception-keras train``.

    ``ik.train(preset="quickstart")``, ``ik.train(dataset="tf_flowers", epochs=10)`` or
    ``ik.train(TrainConfig(...), DataConfig(...))``; how ``config``, ``data_config``,
    ``preset`` and ``options`` combine is :func:`run_configs`'s. ``steps_per_epoch`` is the
    same as the option of that name.
    """
    if steps_per_epoch is not None:
        options["steps_per_epoch"] = steps_per_epoch
    config, data_config = run_configs(preset, config, data_config, **options)
    # A multi-worker strategy must exist before TensorFlow runs any operation: make it first.
    strategy = make_strategy(config.strategy)
    data = load_data(data_config)
    # Export reads it back for int8 calibration images from the same data set.
    os.makedirs(config.output_dir, exist_ok=True)
    with open(os.path.join(config.output_dir, DATA_CONFIG_FILE), "w") as f:
        json.dump(dataclasses.asdict(data_config), f, indent=2)
    if data.validation is None:
        raise UsageError(
            "training needs a validation set: set a validation split, folder or fraction."
        )
    result = fit(
        config,
        data.train,
        data.validation,
        data.num_classes,
        class_names=data.class_names,
        batch_size=data_config.batch_size,
        train_examples=data.train_examples,
        strategy=strategy,
        verbose=verbose,
    )
    result.skipped_files = data.skipped_count()
    return result

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

import dataclasses
import math
import os
import warnings

import keras
import tensorflow as tf

from inception_keras import pretrained
from inception_keras.callbacks import (  # noqa: F401 (re-exported: part of the training API)
    Throughput,
    best_scores,
    progress_verbosity,
    read_history,
    training_callbacks,
    validation_end_is_not_a_warning,
)
from inception_keras.data import batches_per_epoch, load_data
from inception_keras.distribute import is_chief, make_strategy, with_auto_shard
from inception_keras.errors import UsageError
from inception_keras.finetune import fit_finetune
from inception_keras.global_state import restoring_global_state
from inception_keras.model import OUTPUT_NAMES, GoogLeNet
from inception_keras.optimizers import make_optimizer
from inception_keras.run_config import (  # noqa: F401 (re-exported: part of the training API)
    PRECISIONS,
    TrainConfig,
    run_configs,
)
from inception_keras.run_folder import (  # noqa: F401 (re-exported: part of the training API)
    TrainResult,
    check_output_dir,
    prepare_run_folder,
)
from inception_keras.schedules import WarmupCosineDecay


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
    return WarmupCosineDecay(config.learning_rate, decay_steps=total - warmup, warmup_steps=warmup)


def build_optimizer(config, steps_per_epoch):
    return make_optimizer(config, learning_rate_schedule(config, steps_per_epoch))


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


def build_training_state(model, dataset):
    """Creates the optimizer's slots and EMA copies and the metrics' variables before ``fit``.

    Without a ``tf.distribute`` strategy Keras creates them while tracing the first train step,
    and TensorFlow then traces the whole step a second time (a traced function may create
    variables only on its first trace): the first step took twice as long. This is the build
    Keras runs itself under a strategy (a private method, hence the guard).
    """
    build = getattr(model, "_symbolic_build", None)
    if build is not None:
        build(data_batch=dataset.element_spec)


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


@restoring_global_state
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
    data_config=None,
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
        data_config: the :class:`~inception_keras.data.DataConfig` the datasets came from, if
            any; written beside the checkpoints (export reads it for int8 calibration images).

    Everything is checked before anything is written: the output directory (an interrupted run
    there resumes with the same settings; a finished one is replaced only with
    ``config.overwrite``), the data's size and the model's arguments.

    Returns:
        A :class:`TrainResult`.

    The global dtype policy (``precision``) and the Python and NumPy random states (``seed``)
    are set for the run and restored on return or error: models built after it get the policy
    they would have had before. TensorFlow's global seed has no getter to restore: it stays
    ``seed``.
    """
    if config.recipe == "finetune":
        raise UsageError(
            "the finetune recipe reads its data twice (features once, then images): "
            "run it with train(), which takes a DataConfig, not with fit()."
        )
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
    if batch_size is None:  # costs one batch of the pipeline; callers that know it pass it
        batch_size = int(train_dataset.element_spec[0].shape[0] or 0) or int(
            next(iter(train_dataset.take(1)))[0].shape[0]
        )
    cardinality = int(train_dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY and steps_per_epoch is None:
        raise UsageError("the training set is endless (a stream): pass steps_per_epoch.")
    # The schedule needs the epoch length.
    schedule_steps = steps_per_epoch or batches_per_epoch(train_dataset, train_examples, batch_size)
    if schedule_steps == 0:
        raise UsageError("the training set is empty.")
    if not schedule_steps:
        raise UsageError(
            "the training set's length is unknown: pass steps_per_epoch or train_examples."
        )
    per_call = config.steps_per_execution
    if steps_per_epoch is not None and steps_per_epoch % per_call:
        # Keras runs whole calls of steps_per_execution steps on a stream: 10 steps an epoch in
        # calls of 4 would run 12, and the schedule would count 10.
        raise UsageError(
            f"`steps_per_epoch` ({steps_per_epoch}) must be a multiple of "
            f"`steps_per_execution` ({per_call})."
        )
    if cardinality == tf.data.UNKNOWN_CARDINALITY:
        # Keras takes one optimizer step too many per epoch on a set of unknown length (seen with
        # Keras 3.15: 18 steps for 2 epochs of 8 batches); an endless repeat with a fixed number
        # of steps per epoch avoids it. Each pass is still reshuffled. The epoch is rounded up to
        # whole calls of steps_per_execution, the steps Keras runs, so the schedule counts them.
        steps_per_epoch = schedule_steps = math.ceil(schedule_steps / per_call) * per_call
    if steps_per_epoch is not None and cardinality != tf.data.INFINITE_CARDINALITY:
        # Epochs of a fixed number of steps read one stream, so no epoch runs out of data.
        train_dataset = train_dataset.repeat()

    _warn_if_the_average_lags(config, config.epochs * schedule_steps)
    resuming = check_output_dir(config, num_classes)

    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(config.precision)
    with strategy.scope():  # building the model checks its arguments: before anything is written
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
        train_data = training_targets(train_dataset, num_classes)
        build_training_state(model, train_data)

    prepare_run_folder(config, resuming, num_classes, class_names, data_config)

    # The validation set's length is hidden from Keras: at the end of an evaluation of a set of
    # known length Keras starts a fresh iterator and drops it at the next evaluation, a training
    # epoch later, and dropping it then can stall training (measured in docs/performance.md).
    # A set of unknown length is read to its end, and no iterator is left waiting.
    validation = training_targets(val_dataset, num_classes, validation=True)
    # Validation weights the aux heads 0 (training_targets): their always-zero losses are dropped
    # from the logs before the history, checkpoints, TensorBoard and the progress bar see them.
    unvalidated = tuple(f"val_{name}_loss" for name in OUTPUT_NAMES if name != "predictions")
    with validation_end_is_not_a_warning():
        model.fit(
            train_data,
            validation_data=validation.filter(lambda *_: True),
            epochs=config.epochs,
            steps_per_epoch=steps_per_epoch,
            callbacks=training_callbacks(config, batch_size, drop_logs=unvalidated)
            + list(extra_callbacks),
            verbose=progress_verbosity(verbose),
            shuffle=False,  # the pipelines shuffle; Keras ignores (and warns about) it for tf.data
        )
    # The CSV log spans the whole run, epochs before a resume included; the best scores are
    # those best.keras was saved with.
    return TrainResult.read(config.output_dir, model)


def _warn_if_the_average_lags(config, total_steps):
    """EMA over a run too short for it: the weights validated and saved would be close to the
    ones the run started from (a short fine-tuning run validates at chance level)."""
    if not config.ema:
        return
    span = 1 / (1 - config.ema_momentum)  # the steps an average mostly reflects
    if total_steps < 3 * span:
        fitting = 1 - 3 / total_steps  # a span of a third of the run
        # Rounded down, to the digits that tell it from 1 (0.9997, not 1).
        digits = max(2, math.ceil(-math.log10(3 / total_steps)) + 1)
        fitting = math.floor(fitting * 10**digits + 1e-9) / 10**digits
        advice = (
            f"Set ema_momentum to at most {fitting:.{digits}f} (--ema-momentum) or turn EMA off "
            "(--no-ema)."
            if fitting > 0
            else "Turn EMA off (--no-ema)."
        )
        warnings.warn(
            f"EMA momentum {config.ema_momentum} averages over about {span:.0f} steps, and this "
            f"run takes {total_steps}: validation and checkpoints would lag far behind the model. "
            + advice,
            UserWarning,
            stacklevel=4,  # the caller of fit (through the state-restoring wrapper)
        )


def train(
    config=None,
    data_config=None,
    steps_per_epoch=None,
    verbose="auto",
    *,
    preset=None,
    extra_callbacks=(),
    **options,
):
    """Loads the data and trains (see :func:`fit`): the whole ``inception-keras train``.

    ``ik.train(preset="quickstart")``, ``ik.train(dataset="tf_flowers", epochs=10)`` or
    ``ik.train(TrainConfig(...), DataConfig(...))``; how ``config``, ``data_config``,
    ``preset`` and ``options`` combine is :func:`run_configs`'s. ``steps_per_epoch`` is the
    same as the option of that name; ``extra_callbacks`` are :func:`fit`'s.
    """
    if steps_per_epoch is not None:
        options["steps_per_epoch"] = steps_per_epoch
    config, data_config = run_configs(preset, config, data_config, **options)
    # Before loading, which may write into data_dir: what the run records is what it read.
    data_config = data_config.with_absolute_folders()
    # A multi-worker strategy must exist before TensorFlow runs any operation: make it first.
    strategy = make_strategy(config.strategy)
    data = load_data(data_config)
    if data.validation is None:
        raise UsageError(
            "training needs a validation set: set a validation split, folder or fraction."
        )
    if config.recipe == "finetune":
        return fit_finetune(config, data_config, data, verbose, extra_callbacks, strategy)
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
        data_config=data_config,
        extra_callbacks=extra_callbacks,
    )
    result.skipped_files = data.skipped_count()
    return result

"""The ``finetune`` recipe: pretrained weights adapted to new classes in two phases, as Keras'
"Transfer learning & fine-tuning" guide and torchvision's fine-tuning tutorial do.

1. **A new classifier on the frozen backbone.** The backbone's ``pool5`` features of every
   training image (the central crop, plus ``feature_views - 1`` augmented crops) and validation
   image are computed once and cached in the run's folder (:mod:`inception_keras.feature_cache`);
   the classifier (``dropout`` -> ``fc``) trains on them for up to ``epochs`` epochs, stopping
   after ``patience`` epochs without a better validation top-1 and keeping its best. An epoch
   draws one view of each image. No aux heads: they would only see frozen features.
2. **The top of the backbone, unfrozen.** From ``unfreeze_from`` on, the layers train with the
   classifier on augmented images for ``finetune_epochs`` epochs, at a tenth of the learning rate
   with a cosine decay; every layer before it keeps the pretrained weights, and every BatchNorm
   layer its statistics and scale (frozen, so in inference mode).

Both phases write one ``history.csv`` (with a ``phase`` column), one ``curves.png`` and one
``best.keras`` (the whole classifier, without aux heads). A run killed during either phase resumes
when run again: the first phase from its start on the cached features (a few seconds), the
second from its last finished epoch (its backup holds the classifier of the first).
"""

from __future__ import annotations

import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from inception_keras import pretrained
from inception_keras.architecture import FEATURES_LAYER, TABLE_1
from inception_keras.callbacks import (
    EpochLogs,
    progress_verbosity,
    training_callbacks,
    validation_end_is_not_a_warning,
)
from inception_keras.data import batches_per_epoch
from inception_keras.errors import UsageError
from inception_keras.feature_cache import cached_features
from inception_keras.files import BACKUP_DIR, BEST_MONITOR, HISTORY_FILE, read_history
from inception_keras.global_state import restoring_global_state
from inception_keras.model import GoogLeNet
from inception_keras.optimizers import make_optimizer
from inception_keras.run_config import FINETUNE_ON_SEVERAL_MACHINES
from inception_keras.run_folder import TrainResult, check_output_dir, prepare_run_folder
from inception_keras.schedules import WarmupCosineDecay

#: The second phase's learning rate, as a fraction of the first's.
SECOND_PHASE_LR_FACTOR = 0.1


def head_dataset(examples, labels, num_classes, batch_size, seed=None):
    """Batches of ``(example, one-hot label)`` from ``examples`` ``[views, N, ...]``: with a
    ``seed``, shuffled and one random view of each example per epoch; without, in order, view 0.

    Used for the cached features; the same order comes out for any ``examples`` of the same
    length, seed and views, which is what lets a test feed the frozen network the images the
    cache was computed from, batch for batch.
    """
    examples = np.asarray(examples)
    views, count = examples.shape[:2]
    order = tf.data.Dataset.range(count)
    if seed is None:
        views, picks = 1, tf.data.Dataset.range(count)
    else:
        order = order.shuffle(count, seed=seed, reshuffle_each_iteration=True)
        picks = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    table = tf.constant(np.moveaxis(examples, 0, 1))  # [N, views, ...]
    targets = tf.one_hot(tf.constant(labels, tf.int32), num_classes)

    def pick(index, random):
        view = tf.cast(random % views, tf.int32)
        return tf.gather(table, index)[view], tf.gather(targets, index)

    return tf.data.Dataset.zip((order, picks)).map(pick).batch(batch_size)


def _compile(model, config, learning_rate):
    model.compile(
        optimizer=make_optimizer(config, learning_rate, ema=False),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[
            keras.metrics.CategoricalAccuracy(name="top1"),
            keras.metrics.TopKCategoricalAccuracy(k=5, name="top5"),
        ],
        jit_compile=config.jit_compile,
    )


def classifier_head(model, feature_shape):
    """A model from ``pool5`` features to the classifier's output, sharing ``model``'s layers
    (``dropout``, ``fc``, ``predictions``): training it trains ``model``'s classifier."""
    inputs = keras.Input(feature_shape, name="features")
    x = inputs
    for name in ("dropout", "fc", "predictions"):
        x = model.get_layer(name)(x)
    return keras.Model(inputs, x, name="classifier_head")


def frozen_before(model, name):
    """The layer just before Table 1's ``name`` that ``model`` has (``None`` for the first):
    freezing it and what it depends on leaves ``name`` and everything after it trainable."""
    layers = [row.name for row in TABLE_1]
    present = {layer.name for layer in model.layers}
    for previous in reversed(layers[: layers.index(name)]):
        if previous in present:
            return previous
    return None


def _train_head(model, cache, config, data_config, verbose, extra_callbacks):
    """Phase 1: the classifier on the cached features; returns the epochs run."""
    head = classifier_head(model, cache.train.shape[2:])
    _compile(head, config, config.learning_rate)
    num_classes, batch = len(cache.class_names), data_config.batch_size
    train = head_dataset(cache.train, cache.train_labels, num_classes, batch, config.seed)
    validation = head_dataset(cache.validation[None], cache.validation_labels, num_classes, batch)
    # No resume backup: an interrupted first phase runs again from its start, on the cache.
    callbacks = training_callbacks(
        config, batch, epoch_logs=EpochLogs({"phase": 1}), backup=False, ema=False, saved=model
    )
    stop = keras.callbacks.EarlyStopping(
        BEST_MONITOR, mode="max", patience=config.patience, restore_best_weights=True
    )
    history = head.fit(
        train.prefetch(tf.data.AUTOTUNE),
        validation_data=validation,
        epochs=config.epochs,
        callbacks=callbacks + [stop, *extra_callbacks],
        verbose=progress_verbosity(verbose),
        shuffle=False,  # head_dataset shuffles; Keras ignores (and warns about) it for tf.data
    )
    return len(history.epoch)


def _second_phase_steps(config, data, batch):
    """Steps per epoch of the second phase (``None`` without one); a one-line error, before
    anything is written, when the training set is empty or of unknown length."""
    if not config.finetune_epochs:
        return None
    steps = batches_per_epoch(data.train, data.train_examples, batch)
    if not steps:
        raise UsageError(
            "the second phase needs the training set's length, and it is "
            + (
                "empty."
                if steps == 0
                else "unknown: set finetune_epochs=0 to train only the first."
            )
        )
    return steps


def _fine_tune_top(model, config, data, batch, steps, first_epoch, verbose, extra_callbacks):
    """Phase 2: the layers from ``unfreeze_from`` on, with the classifier, on augmented images."""
    frozen = frozen_before(model, config.unfreeze_from)
    if frozen:
        pretrained.freeze_until(model, frozen)
    # BatchNorm layers stay in inference mode above that point too, with their statistics and
    # scale, as Keras' fine-tuning guide advises: batches of a few dozen new images would
    # otherwise replace the statistics the pretrained convolutions were trained with.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    num_classes = data.num_classes

    def one_hot(images, labels):
        return images, tf.one_hot(labels, num_classes)

    train = data.train.map(one_hot).repeat()
    validation = data.validation.map(one_hot).filter(lambda *_: True)  # as training.fit does
    schedule = WarmupCosineDecay(
        config.learning_rate * SECOND_PHASE_LR_FACTOR,
        decay_steps=config.finetune_epochs * steps,
        warmup_steps=0,
    )
    _compile(model, config, schedule)
    callbacks = training_callbacks(config, batch, epoch_logs=EpochLogs({"phase": 2}), ema=False)
    with validation_end_is_not_a_warning():
        model.fit(
            train,
            validation_data=validation,
            initial_epoch=first_epoch,
            epochs=first_epoch + config.finetune_epochs,
            steps_per_epoch=steps,
            callbacks=callbacks + list(extra_callbacks),
            verbose=progress_verbosity(verbose),
            shuffle=False,
        )


@restoring_global_state
def fit_finetune(config, data_config, data, verbose="auto", extra_callbacks=(), strategy=None):
    """Runs the ``finetune`` recipe (see the module's text) on ``data``
    (:func:`inception_keras.data.load_data` of ``data_config``, with a validation set) and
    returns a :class:`~inception_keras.run_folder.TrainResult`.

    ``strategy``: a ``tf.distribute.Strategy`` on one machine (default: the current one); both
    phases train under it, with ``data_config.batch_size`` as the global batch. The features are
    computed once, on one device.
    ``config.precision`` is the global dtype policy during the run, as in
    :func:`inception_keras.training.fit`, and restored after it.
    """
    if config.recipe != "finetune":
        raise UsageError(f"fit_finetune runs the finetune recipe, not {config.recipe!r}.")
    strategy = strategy or tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        raise UsageError(FINETUNE_ON_SEVERAL_MACHINES)
    out = config.output_dir
    phase_two_started = os.path.exists(os.path.join(out, BACKUP_DIR, "training_metadata.json"))
    num_classes, class_names = data.num_classes, data.class_names
    resuming = check_output_dir(config, num_classes)
    steps = _second_phase_steps(config, data, data_config.batch_size)

    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(config.precision)
    with strategy.scope():
        model = GoogLeNet(
            input_shape=(config.image_size, config.image_size, 3),
            classes=num_classes,
            variant=config.variant,
        )
        pretrained.initialize_from(model, config.weights)
        backbone = keras.Model(model.input, model.get_layer(FEATURES_LAYER).output, name="backbone")

    prepare_run_folder(config, resuming, num_classes, class_names, data_config)
    os.makedirs(os.path.join(out, BACKUP_DIR), exist_ok=True)  # the run is unfinished until done

    skipped = 0
    if phase_two_started:  # the backup holds the whole model, the first phase's classifier in it
        history = read_history(os.path.join(out, HISTORY_FILE))
        head_epochs = sum(1 for phase in history.get("phase", []) if phase == 1)
    else:
        cache = cached_features(backbone, data_config, out, config.feature_views, verbose=True)
        skipped = len(cache.skipped_files)
        print(f"Phase 1: the classifier on cached features ({cache.path}).")
        with strategy.scope():
            head_epochs = _train_head(model, cache, config, data_config, verbose, extra_callbacks)
    if config.finetune_epochs:
        print(f"Phase 2: {config.unfreeze_from} and above, at a tenth of the learning rate.")
        batch = data_config.batch_size
        with strategy.scope():
            _fine_tune_top(model, config, data, batch, steps, head_epochs, verbose, extra_callbacks)
    shutil.rmtree(os.path.join(out, BACKUP_DIR), ignore_errors=True)

    result = TrainResult.read(out, model)
    # The features' pipeline and the second phase's read the same files: the larger count.
    result.skipped_files = max(skipped, data.skipped_count())
    return result

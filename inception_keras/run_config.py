"""A training run's configuration: :class:`TrainConfig` and :func:`run_configs`, the one place where
dataclass defaults, recipes, presets and explicit options combine.

Imports no TensorFlow (nor do the modules it reads), so the command line's ``--help`` and a
configuration built in Python cost no TensorFlow import.
"""

import dataclasses

from inception_keras.architecture import AUX_LOSS_WEIGHT, TABLE_1
from inception_keras.data_config import DataConfig
from inception_keras.errors import UsageError
from inception_keras.preprocessing_config import AugmentConfig
from inception_keras.pretrained import sources
from inception_keras.recipes import PRESETS, RECIPE_DATA_DEFAULTS, RECIPE_DEFAULTS, RECIPES

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# What TrainConfig.strategy accepts; inception_keras.distribute.make_strategy makes each.
STRATEGIES = ("auto", "default", "mirrored", "multi-worker")


@dataclasses.dataclass
class TrainConfig:
    """Everything that shapes a training run. ``None`` fields take the recipe's default.

    Attributes:
        variant: ``"paper"``, ``"bn"``, ``"slim"`` or ``"naive"`` (see
            :func:`inception_keras.GoogLeNet`);
            with ``weights``, the weights' variant.
        image_size: square input size in pixels.
        epochs: number of epochs.
        recipe: ``"paper"``, ``"modern"`` or ``"finetune"`` (with ``weights``: a new classifier
            trained on the frozen backbone's cached features for up to ``epochs`` epochs, then
            the blocks from ``unfreeze_from`` on at a tenth of the learning rate for
            ``finetune_epochs`` epochs; see :mod:`inception_keras.finetune`).
        optimizer: ``"sgd"`` (momentum) or ``"adamw"``; unset: the recipe's.
        learning_rate: initial (peak, with warm-up) learning rate; unset: the recipe's.
        momentum: SGD momentum (the paper: 0.9).
        lr_decay_rate, lr_decay_epochs: the paper's step schedule (x0.96 every 8 epochs).
        warmup_epochs: linear warm-up length (``modern`` recipe); unset: the recipe's.
        weight_decay: decoupled weight decay; unset: the recipe's.
        label_smoothing: label smoothing of the cross-entropy; unset: the recipe's.
        aux_weight: loss weight of each auxiliary classifier (the paper: 0.3; 0 disables them).
        ema: Polyak averaging of the weights (optimizer EMA); the finetune recipe trains without.
        ema_momentum: EMA decay per step; pick it so 1 / (1 - momentum) is well under the number
            of training steps, or the average lags behind the model.
        precision: ``float32``, ``mixed_float16`` or ``mixed_bfloat16``.
        jit_compile: compile the train step with XLA.
        strategy: ``auto`` (all local GPUs when there are several), ``default``, ``mirrored``
            or ``multi-worker`` (hosts from ``TF_CONFIG``; not with the finetune recipe, which
            runs on one machine); the batch size is global.
        steps_per_execution: train steps per ``tf.function`` call; an epoch is a whole number of
            calls.
        steps_per_epoch: training steps per epoch, a multiple of ``steps_per_execution``; unset:
            one pass over the training set, rounded up to whole calls when its length is unknown
            (an endless ``shapes_stream`` needs it).
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
        unfreeze_from: ``finetune`` recipe: the first Table 1 layer trained in its second phase;
            everything before it stays as ``weights`` has it, BatchNorm statistics included;
            unset: the recipe's (``inception_5a``).
        finetune_epochs: ``finetune`` recipe: epochs of the second phase (0: the first only).
        feature_views: ``finetune`` recipe: views of each training image whose features are
            cached for the first phase: the central crop, plus ``feature_views - 1`` augmented
            crops (``augment``); each epoch draws one view per image.
        patience: ``finetune`` recipe: the first phase stops after this many epochs without a
            better validation top-1, and keeps its best.
        overwrite: replace a finished run in ``output_dir`` (otherwise refused, naming it); an
            interrupted run there resumes either way.
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
    unfreeze_from: str | None = None
    finetune_epochs: int = 5
    feature_views: int = 1
    patience: int = 3
    overwrite: bool = False

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
        if self.steps_per_execution < 1:
            raise UsageError(
                f"`steps_per_execution` must be at least 1; got {self.steps_per_execution}."
            )
        if self.steps_per_epoch is not None and self.steps_per_epoch % self.steps_per_execution:
            # Keras runs whole calls: the epoch would be longer than the schedule counts.
            raise UsageError(
                f"`steps_per_epoch` ({self.steps_per_epoch}) must be a multiple of "
                f"`steps_per_execution` ({self.steps_per_execution})."
            )
        if not self.learning_rate > 0:
            raise UsageError(f"`learning_rate` must be > 0; got {self.learning_rate}.")
        if self.freeze_until and not self.weights:
            raise UsageError("`freeze_until` needs `weights` to start from.")
        if self.recipe == "finetune":
            self._check_finetune()
        elif self.unfreeze_from is not None:
            raise UsageError("`unfreeze_from` is the finetune recipe's: set recipe='finetune'.")
        if self.weights:
            self.variant = sources.weights_variant(self.weights)

    def _check_finetune(self):
        if not self.weights:
            raise UsageError("the finetune recipe needs `weights` to start from.")
        if self.freeze_until:
            raise UsageError(
                "the finetune recipe freezes by itself (the backbone, then everything before "
                "`unfreeze_from`): leave `freeze_until` unset."
            )
        layers = [row.name for row in TABLE_1]
        if self.unfreeze_from not in layers:
            raise UsageError(
                f"`unfreeze_from` must be a layer of Table 1 ({', '.join(layers)}); "
                f"got {self.unfreeze_from!r}."
            )
        if self.strategy == "multi-worker":
            raise UsageError(FINETUNE_ON_SEVERAL_MACHINES)
        for name in ("finetune_epochs", "patience"):
            if getattr(self, name) < 0:
                raise UsageError(f"`{name}` must be >= 0; got {getattr(self, name)}.")
        if self.feature_views < 1:
            raise UsageError(f"`feature_views` must be at least 1; got {self.feature_views}.")


FINETUNE_ON_SEVERAL_MACHINES = (
    "the finetune recipe runs on one machine (its feature cache is one file in the run's "
    "folder): use strategy 'mirrored' for several devices of one machine, or another recipe "
    "to train on several machines."
)


def run_configs(preset=None, config=None, data_config=None, **options):
    """A run's :class:`TrainConfig` and :class:`~inception_keras.data_config.DataConfig`, from one
    place.

    Values are taken, later ones winning, from: the dataclasses' defaults, ``config`` and
    ``data_config`` if given, the named ``preset`` (see :mod:`inception_keras.recipes`), and
    ``options``; under all of them, the recipe's data defaults
    (:data:`~inception_keras.recipes.RECIPE_DATA_DEFAULTS`). Each option names a field of
    ``TrainConfig``, ``DataConfig`` or :class:`~inception_keras.preprocessing_config.AugmentConfig`
    (``area_range=(0.5, 1.0)``, ``flip=False`` ...); ``augment=False`` trains without
    augmentation. ``image_size`` and
    ``seed`` set both configs, so the model and the data agree. Unset recipe fields
    (``learning_rate``, ``optimizer`` ...) take the recipe's defaults.
    """
    if preset is not None and preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; known: {', '.join(sorted(PRESETS))}.")
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    data_fields = {f.name for f in dataclasses.fields(DataConfig)}
    augment_fields = {f.name for f in dataclasses.fields(AugmentConfig)}
    values = {**PRESETS.get(preset, {}), **options}
    recipe = values.get("recipe", config.recipe if config is not None else None)
    if data_config is None:  # a DataConfig given is the caller's choice of every data setting
        values = {**RECIPE_DATA_DEFAULTS.get(recipe, {}), **values}
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
        given = sorted(set(augment_values) & set(options))  # a preset's are only defaults
        if given:
            raise UsageError(
                f"augmentation option(s) {', '.join(given)} given with augmentation off."
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

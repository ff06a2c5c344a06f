"""Recipes and presets: the data that picks a training run's hyper-parameters.

A *recipe* fills the optimizer settings a :class:`~inception_keras.training.TrainConfig` leaves
unset (``None``). A *preset* is a named run: values for any field of ``TrainConfig``,
``DataConfig`` or ``AugmentConfig``, which explicit options override
(``ik.train(preset="quickstart", epochs=3)``, ``inception-keras train --preset quickstart
--epochs 3``). Both are plain data, read by :func:`inception_keras.training.run_configs`.
"""

RECIPES = ("paper", "modern", "finetune")

# Per-recipe defaults; any field left None in TrainConfig takes its recipe's value.
RECIPE_DEFAULTS = {
    # Section 6 of the paper: asynchronous SGD, momentum 0.9, x0.96 every 8 epochs.
    "paper": dict(
        optimizer="sgd",
        learning_rate=0.01,
        weight_decay=0.0,
        label_smoothing=0.0,
        warmup_epochs=0.0,
    ),
    "modern": dict(
        optimizer="adamw",
        learning_rate=2e-3,
        weight_decay=0.05,
        label_smoothing=0.1,
        warmup_epochs=1.0,
    ),
    # Fine-tuning pretrained weights in two phases (inception_keras.finetune), as Keras' "Transfer
    # learning & fine-tuning" guide does: a new classifier on the frozen backbone's cached
    # features at Adam's usual 1e-3, then the top blocks at a tenth of it. The weight decay is
    # Keras' AdamW default.
    "finetune": dict(
        optimizer="adamw",
        learning_rate=1e-3,
        weight_decay=0.004,
        label_smoothing=0.1,
        warmup_epochs=0.0,
        # The last stage, after the last max-pool: the most task-specific features (Yosinski et
        # al., "How transferable are features in deep neural networks?", 2014), two of the nine
        # blocks, and the cheapest to back-propagate through (7x7 maps at 224 px).
        unfreeze_from="inception_5a",
    ),
}

# Per-recipe defaults of the data's settings, under any preset and explicit option. The finetune
# recipe's crops keep half the image or more: with the paper's (8-100% of the area, for training
# from scratch) its second phase lowered validation top-1 from 64% to 55-57%, with 50-100% it rose
# to 66% (README, "Fine-tuning in two phases").
RECIPE_DATA_DEFAULTS = {
    "finetune": dict(area_range=(0.5, 1.0)),
}

# "quickstart" fits the 2-core CPU budget of ./scripts/quickstart.sh: the BatchNorm variant at
# 64 px, AdamW with a short warm-up and cosine decay, an EMA short enough for ~1,250 steps, several
# steps per tf.function call, and a fixed seed with deterministic data order, so that running the
# same command twice gives the same run (up to the order of floating-point sums in parallel
# kernels). Batches of 32 make twice the updates of 64 at the same images per second on a CPU,
# and the run has no augmentation, which only slowed learning over so few epochs (measured in
# docs/performance.md, "The quickstart recipe").
# Its measured accuracy and time are in the README.
PRESETS = {
    "quickstart": dict(
        dataset="shapes/64px",
        data_dir="runs/tfds",
        cache=True,
        variant="bn",
        image_size=64,
        batch_size=32,
        epochs=4,
        recipe="modern",
        learning_rate=3e-3,
        warmup_epochs=0.5,
        ema_momentum=0.99,
        augment=False,
        steps_per_execution=4,
        seed=0,
        deterministic=True,
        output_dir="runs/quickstart",
    ),
}

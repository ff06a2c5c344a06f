"""One training process for tests/test_distribute.py: a few steps of the package's own ``fit``.

Run as ``python tests/_worker.py --strategy mirrored|multi-worker --data-dir DIR --out DIR``
(a ``multi-worker`` process reads ``TF_CONFIG``). It trains a small GoogLeNet with aux heads on the
built-in shapes set (``shapes/smoke``, prepared in DIR beforehand) through
``inception_keras.training.fit`` and writes ``OUT/result.json``: the number of replicas, the
training history, whether the Keras shim was installed, and a SHA-256 per variable of the weights
before and after training, so the test can compare workers bit for bit. With ``--save-weights`` it
also writes the trainable weights before and after training (``OUT/weights.npz``), so a test can
compare the updates of runs with different numbers of replicas.
"""

import argparse
import hashlib
import json
import os
import sys

# The strategy must exist before TensorFlow runs any operation (logical devices and collective ops
# are configured at runtime start), so nothing below builds tensors before it is made.
from inception_keras import distribute

IMAGE_SIZE = 64
SEED = 1234


def checksums(model):
    """SHA-256 of each variable's bytes, keyed by its path."""
    return {v.path: hashlib.sha256(v.numpy().tobytes()).hexdigest() for v in model.variables}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategy", choices=("mirrored", "multi-worker"), required=True)
    parser.add_argument("--out", required=True, help="directory for result.json")
    parser.add_argument("--data-dir", required=True, help="tfds data_dir with shapes/smoke")
    parser.add_argument("--variant", choices=("paper", "bn"), default="bn")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--per-replica-batch", type=int, default=4)
    parser.add_argument("--logical-cpus", type=int, default=2, help="with --strategy mirrored")
    parser.add_argument("--no-shim", action="store_true", help="multi-worker without the shim")
    parser.add_argument(
        "--no-dropout", action="store_true", help="dropout off, so replicas draw no random masks"
    )
    parser.add_argument("--save-weights", action="store_true", help="write OUT/weights.npz")
    args = parser.parse_args(argv)

    if args.strategy == "mirrored":
        devices = distribute.configure_logical_cpus(args.logical_cpus)
        strategy = distribute.make_strategy("mirrored", devices=devices)
    else:
        strategy = distribute.make_strategy("multi-worker", patch_keras=not args.no_shim)

    import keras
    import numpy as np
    from keras.src.backend.tensorflow import trainer

    from inception_keras.data import DataConfig, load_data
    from inception_keras.training import TrainConfig, fit

    batch = distribute.global_batch_size(args.per_replica_batch, strategy)
    # Deterministic: every worker builds the same batches, and shards them the same way.
    data = load_data(
        DataConfig(
            dataset="shapes/smoke",
            data_dir=args.data_dir,
            image_size=IMAGE_SIZE,
            batch_size=batch,
            seed=SEED,
            deterministic=True,
        )
    )
    config = TrainConfig(
        variant=args.variant,
        image_size=IMAGE_SIZE,
        epochs=1,
        recipe="paper",
        learning_rate=0.01,
        seed=SEED,
        output_dir=os.path.join(args.out, "run"),
    )
    before, before_values = {}, []

    class RecordStart(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            before.update(checksums(self.model))
            before_values.extend(v.numpy() for v in self.model.trainable_variables)
            if args.no_dropout:
                # Read when the step is traced, which happens after this.
                for layer in self.model.layers:
                    if isinstance(layer, keras.layers.Dropout):
                        layer.rate = 0.0

    result = fit(
        config,
        data.train,
        data.validation,
        data.num_classes,
        batch_size=batch,
        steps_per_epoch=args.steps,
        strategy=strategy,
        extra_callbacks=[RecordStart()],
        verbose=0,
    )
    history = result.history
    out = {
        "replicas": strategy.num_replicas_in_sync,
        "history": {k: [float(x) for x in v] for k, v in history.items() if k != "images_per_sec"},
        "finite": bool(all(np.isfinite(v).all() for v in history.values())),
        "shim_installed": bool(getattr(trainer.reduce_per_replica, distribute._SHIM_MARK, False)),
        "trainable": [v.path for v in result.model.trainable_variables],
        "before": before,
        "after": checksums(result.model),
        "output_dir": result.output_dir,
    }
    if args.save_weights:
        after_values = [v.numpy() for v in result.model.trainable_variables]
        np.savez(
            os.path.join(args.out, "weights.npz"),
            **{f"before_{i}": value for i, value in enumerate(before_values)},
            **{f"after_{i}": value for i, value in enumerate(after_values)},
        )
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())

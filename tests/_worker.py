"""One training process for tests/test_distribute.py: a few ``fit`` steps of a small GoogLeNet.

Run as ``python tests/_worker.py --strategy mirrored|multi-worker --out DIR [...]`` (a
``multi-worker`` process reads ``TF_CONFIG``). It writes ``DIR/result.json`` with the number of
replicas, the training history, whether the Keras shim was installed, and a SHA-256 per variable
of the weights before and after training, so the test can compare workers bit for bit.
"""

import argparse
import hashlib
import json
import os
import sys

# The strategy must exist before TensorFlow runs any operation (logical devices and collective ops
# are configured at runtime start), so nothing below builds tensors before it is made.
from inception_keras import distribute

CLASSES = 5
IMAGE_SIZE = 64
SEED = 1234


def synthetic_dataset(global_batch, examples=64):
    """Deterministic random images and labels, the same on every process; repeated forever.

    Stand-in until the package's built-in data set exists. Labels go to all three outputs.
    """
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(SEED)
    images = rng.uniform(0, 255, (examples, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32")
    labels = rng.integers(0, CLASSES, examples).astype("int32")
    targets = {"predictions": labels, "aux1": labels, "aux2": labels}
    dataset = tf.data.Dataset.from_tensor_slices((images, targets)).batch(global_batch).repeat()
    return distribute.with_auto_shard(dataset, reads_files=False)


def checksums(model):
    """SHA-256 of each variable's bytes, keyed by its path."""
    return {v.path: hashlib.sha256(v.numpy().tobytes()).hexdigest() for v in model.variables}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategy", choices=("mirrored", "multi-worker"), required=True)
    parser.add_argument("--out", required=True, help="directory for result.json")
    parser.add_argument("--variant", choices=("paper", "bn"), default="bn")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--per-replica-batch", type=int, default=4)
    parser.add_argument("--logical-cpus", type=int, default=2, help="with --strategy mirrored")
    parser.add_argument("--no-shim", action="store_true", help="multi-worker without the shim")
    args = parser.parse_args(argv)

    if args.strategy == "mirrored":
        devices = distribute.configure_logical_cpus(args.logical_cpus)
        strategy = distribute.make_strategy("mirrored", devices=devices)
    else:
        strategy = distribute.make_strategy("multi-worker", patch_keras=not args.no_shim)

    import keras
    import numpy as np
    from keras.src.backend.tensorflow import trainer

    import inception_keras as ik

    # Same initial weights and dropout masks on every process (MultiWorkerMirroredStrategy also
    # broadcasts initial values from worker 0; the seed makes the runs repeatable as well).
    keras.utils.set_random_seed(SEED)
    with strategy.scope():
        model = ik.GoogLeNet(
            input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), classes=CLASSES, aux_logits=True,
            variant=args.variant,
        )
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
            loss={name: "sparse_categorical_crossentropy" for name in model.output_names},
            loss_weights={"predictions": 1.0, "aux1": 0.3, "aux2": 0.3},
        )
    before = checksums(model)
    dataset = synthetic_dataset(distribute.global_batch_size(args.per_replica_batch, strategy))
    history = model.fit(dataset, steps_per_epoch=args.steps, epochs=1, verbose=0)
    result = {
        "replicas": strategy.num_replicas_in_sync,
        "history": {k: [float(x) for x in v] for k, v in history.history.items()},
        "finite": bool(all(np.isfinite(v).all() for v in history.history.values())),
        "shim_installed": bool(getattr(trainer.reduce_per_replica, distribute._SHIM_MARK, False)),
        "trainable": [v.path for v in model.trainable_variables],
        "before": before,
        "after": checksums(model),
    }
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())

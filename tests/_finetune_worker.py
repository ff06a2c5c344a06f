"""One finetune-recipe run on two logical CPUs under ``MirroredStrategy``, for
tests/test_finetune.py (logical devices must be configured before TensorFlow's runtime starts,
long past in the pytest process).

Run as ``python tests/_finetune_worker.py --data-dir DIR --out DIR`` (``shapes/smoke`` prepared
in DIR). It saves a random "bn" GoogLeNet as the pretrained source, runs both phases of the
recipe through ``inception_keras.finetune.fit_finetune`` with the strategy, and writes
``OUT/result.json``: the replicas, the history's phases, which layers kept the source's weights
and which changed, and the largest difference between the features cached under the strategy and
those of the same backbone run without it.
"""

import argparse
import json
import os
import sys

from inception_keras import distribute  # the strategy first: nothing below builds tensors before

SIZE = 64


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--data-dir", required=True, help="tfds data_dir with shapes/smoke")
    args = parser.parse_args(argv)
    strategy = distribute.make_strategy("mirrored", devices=distribute.configure_logical_cpus(2))

    import keras
    import numpy as np

    import inception_keras as ik
    from inception_keras import feature_cache, finetune, pretrained
    from inception_keras.data import DataConfig, load_data
    from inception_keras.run_config import TrainConfig

    keras.utils.set_random_seed(5)
    source = os.path.join(args.out, "source.keras")
    ik.GoogLeNet(input_shape=(SIZE, SIZE, 3), classes=8, variant="bn").save(source)
    data_config = DataConfig(
        dataset="shapes/smoke",
        data_dir=args.data_dir,
        image_size=SIZE,
        batch_size=32,  # global: 16 images a replica
        seed=1,
        deterministic=True,
    )
    config = TrainConfig(
        recipe="finetune",
        weights=source,
        image_size=SIZE,
        epochs=2,
        patience=5,
        finetune_epochs=1,
        strategy="mirrored",
        output_dir=os.path.join(args.out, "run"),
    )
    result = finetune.fit_finetune(
        config, data_config, load_data(data_config), verbose=0, strategy=strategy
    )

    source_model = keras.saving.load_model(source)
    trained = {layer.name: layer for layer in result.model.layers}
    frozen = pretrained.freeze_until(keras.models.clone_model(source_model), "inception_4e")
    kept, changed = [], []
    for layer in source_model.layers:
        if layer.weights and layer.name in trained and not layer.name.startswith("aux"):
            same = all(
                np.array_equal(want.numpy(), got.numpy())
                for want, got in zip(layer.weights, trained[layer.name].weights)
            )
            (kept if same else changed).append(layer.name)

    # The oracle for the features: the same backbone, built and run outside the strategy.
    model = ik.GoogLeNet(input_shape=(SIZE, SIZE, 3), classes=8, variant="bn")
    pretrained.initialize_from(model, source)
    backbone = keras.Model(model.input, model.get_layer("pool5").output)
    alone = feature_cache.cached_features(backbone, data_config, args.out, verbose=False)
    under = feature_cache.cached_features(backbone, data_config, config.output_dir, verbose=False)
    out = {
        "replicas": strategy.num_replicas_in_sync,
        "model_replicas": result.model.distribute_strategy.num_replicas_in_sync,
        "phases": result.history["phase"],
        "frozen": sorted(frozen),
        "kept": kept,
        "changed": changed,
        "reused": under.reused,
        "feature_difference": float(np.abs(alone.train - under.train).max()),
        "feature_scale": float(np.abs(alone.train).max()),
    }
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Keras' AdamW against the package's FusedAdamW in a preset's training step, side by side.

    python scripts/time_optimizer.py [--preset quickstart] [--rounds 5] [--steps 48] [--profile]

Builds the preset's model twice, one per optimizer (same recipe, schedule and EMA), feeds both
the same in-memory batches and alternates timed ``fit`` calls between them, so that both see
the same machine state. Prints each model's first call (tracing) and every round's images per
second, then the medians; with ``--profile``, also the optimizer's share of each step's kernel
time from a TF profiler trace. docs/performance.md quotes this script's output.
"""

import argparse
import re
import statistics
import time

import inception_keras  # noqa: F401  before TensorFlow, for its CPU kernels (inception_keras.runtime)

# isort: split
import keras
import tensorflow as tf
from profile_train_step import kernel_times  # this folder is on sys.path when a script runs

from inception_keras import training
from inception_keras.benchmark import BenchmarkConfig, measure
from inception_keras.model import GoogLeNet
from inception_keras.optimizers import FusedAdamW
from inception_keras.run_config import run_configs

CLASSES = 8
OPTIMIZER_SCOPE = re.compile(r"adam_w(_\d+)?/")


def synthetic_batches(size, batch):
    config = BenchmarkConfig(image_size=size, batch_size=batch)
    options = tf.data.Options()
    # Each fit call drops its iterator; with autotuning on, that can wait for the autotuning
    # thread (docs/performance.md, "Time lost between training and validation").
    options.autotune.enabled = False
    data = measure.synthetic_batches(config, CLASSES).with_options(options)
    return training.training_targets(data, CLASSES)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="quickstart")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=48, help="steps per timed fit call")
    parser.add_argument("--profile", action="store_true", help="the optimizer's kernel time")
    args = parser.parse_args()
    config, data_config = run_configs(args.preset)
    if config.optimizer != "adamw":
        parser.error(f"preset {args.preset!r} trains with {config.optimizer}, not AdamW")
    data = synthetic_batches(config.image_size, data_config.batch_size)
    models = {}
    for name, optimizer_class in (
        ("keras AdamW", keras.optimizers.AdamW),
        ("FusedAdamW", FusedAdamW),
    ):
        model = GoogLeNet(
            input_shape=(config.image_size, config.image_size, 3),
            classes=CLASSES,
            include_aux=True,
            variant=config.variant,
        )
        training.compile_for_training(model, config, steps_per_epoch=312)
        model.optimizer = optimizer_class.from_config(model.optimizer.get_config())
        training.build_training_state(model, data)
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=2 * config.steps_per_execution, epochs=1, verbose=0)
        print(f"{name:12s} first fit call (traces the step): {time.perf_counter() - start:5.1f} s")
        models[name] = model
    rates = {name: [] for name in models}
    for round_ in range(args.rounds):
        for name, model in models.items():
            start = time.perf_counter()
            model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
            rates[name].append(args.steps * data_config.batch_size / (time.perf_counter() - start))
        print(f"round {round_}: " + ", ".join(f"{n} {r[-1]:.1f} img/s" for n, r in rates.items()))
    medians = {name: statistics.median(r) for name, r in rates.items()}
    print(", ".join(f"median {n} {m:.1f} img/s" for n, m in medians.items()))
    print(f"FusedAdamW / keras AdamW: {medians['FusedAdamW'] / medians['keras AdamW']:.2f}x")
    if args.profile:
        steps = 3 * config.steps_per_execution
        for name, model in models.items():
            times = kernel_times(
                lambda model=model: model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
            )
            total = sum(times.values()) / steps
            # Ops under the optimizer's name scope ("adam_w/", "fused_adam_w_1/", ...).
            mine = sum(ms for (op, _), ms in times.items() if OPTIMIZER_SCOPE.search(op)) / steps
            print(
                f"{name:12s} kernel time per step {total:6.0f} ms, optimizer {mine:5.0f} ms"
                f" ({mine / total:.1%})"
            )


if __name__ == "__main__":
    main()

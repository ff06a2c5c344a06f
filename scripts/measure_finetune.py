"""Measures fine-tuning from pretrained weights three ways on one image folder, in one run:

  (a) full training from the weights (every layer trains; the ``modern`` recipe),
  (b) the frozen backbone without a cache (``--freeze-until inception_5b``, no aux heads): each
      epoch runs the backbone on every image again,
  (c) the ``finetune`` recipe: the classifier on cached features, then the top blocks.

    python scripts/measure_finetune.py --weights runs/quickstart/best.keras

The images are the built-in shapes at ``--size`` pixels (``--images`` of them, four classes,
written to a folder once), so nothing is downloaded; the weights stand in for ImageNet's. It
prints, per way, the seconds to the first epoch whose validation top-1 reaches ``--target``, the
best top-1 and the median epoch time, and the ratio of (b)'s epoch time to (c)'s first-phase
epochs after the first; the figures go to ``OUTPUT/finetune.json``.
"""

import argparse
import json
import os
import shutil
import statistics
import time

import inception_keras  # noqa: F401  before TensorFlow, for its CPU kernels

# isort: split
import keras
import numpy as np
from PIL import Image

import inception_keras as ik
from inception_keras import shapes

CLASSES = ("circle", "square", "triangle", "star")


class EpochClock(keras.callbacks.Callback):
    """Seconds since the run's start, and the validation top-1, at each epoch's end."""

    def __init__(self, start):
        super().__init__()
        self.start, self.rows = start, []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.rows.append(
            dict(
                seconds=time.perf_counter() - self.start,
                val_top1=float(logs.get("val_predictions_top1", np.nan)),
                phase=int(logs.get("phase", 0)),
            )
        )


def write_folder(root, count, size, seed=0):
    """``count`` images of CLASSES (balanced) at ``size`` px, 80% train / 20% validation."""
    if os.path.isdir(root):
        return
    wanted = {shapes.CLASS_NAMES.index(name) for name in CLASSES}
    written = 0
    for image, label in shapes.generate("train", 2 * count + 64, size, seed):
        if label not in wanted:
            continue
        split = "train" if written % 5 else "validation"
        folder = os.path.join(root + ".tmp", split, shapes.CLASS_NAMES[label])
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(image).save(os.path.join(folder, f"{written:05d}.png"))
        written += 1
        if written == count:
            break
    os.replace(root + ".tmp", root)


def run(name, output, target, **options):
    # A fresh run each time: a folder left by an interrupted measurement would resume.
    shutil.rmtree(os.path.join(output, name), ignore_errors=True)
    clock = EpochClock(time.perf_counter())
    result = ik.train(
        output_dir=os.path.join(output, name),
        overwrite=True,
        verbose=2,
        extra_callbacks=[clock],
        **options,
    )
    rows = clock.rows
    reached = next((row["seconds"] for row in rows if row["val_top1"] >= target), None)
    seconds = [rows[0]["seconds"]] + [b["seconds"] - a["seconds"] for a, b in zip(rows, rows[1:])]
    return dict(
        name=name,
        seconds_to_target=reached,
        best_val_top1=result.best_val_top1,
        total_seconds=rows[-1]["seconds"],
        epoch_seconds=seconds,
        phases=[row["phase"] for row in rows],
        val_top1=[row["val_top1"] for row in rows],
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="runs/quickstart/best.keras")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--target", type=float, default=0.6, help="validation top-1 to reach")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of (a) and (b)")
    parser.add_argument("--output", default="runs/measure_finetune")
    args = parser.parse_args()

    folder = os.path.join(args.output, f"shapes{args.size}_{args.images}")
    write_folder(folder, args.images, args.size)
    common = dict(
        dataset=os.path.join(folder, "train"),
        validation_dir=os.path.join(folder, "validation"),
        image_size=args.size,
        batch_size=32,
        weights=args.weights,
        seed=0,
    )
    results = [
        # No weight averaging in (a) and (b): over a few hundred steps the average would still be
        # close to the new classifier's random start (the finetune recipe has none either).
        run(
            "a_full",
            args.output,
            args.target,
            recipe="modern",
            epochs=args.epochs,
            ema=False,
            **common,
        ),
        run(
            "b_frozen",
            args.output,
            args.target,
            recipe="modern",
            epochs=args.epochs,
            freeze_until="inception_5b",
            aux_weight=0.0,
            ema=False,
            **common,
        ),
        run(
            "c_finetune",
            args.output,
            args.target,
            recipe="finetune",
            epochs=20,
            finetune_epochs=2,
            **common,
        ),
    ]
    print(f"\n{args.images} images at {args.size} px, target validation top-1 {args.target:.0%}")
    print(f"{'way':<12} {'to target':>10} {'best top-1':>11} {'median epoch':>13} {'total':>8}")
    for r in results:
        reached = f"{r['seconds_to_target']:.0f} s" if r["seconds_to_target"] else "never"
        median = statistics.median(r["epoch_seconds"])
        print(
            f"{r['name']:<12} {reached:>10} {r['best_val_top1']:>11.1%} {median:>11.1f} s "
            f"{r['total_seconds']:>6.0f} s"
        )
    frozen = statistics.median(results[1]["epoch_seconds"])
    phase1 = [s for s, p in zip(results[2]["epoch_seconds"], results[2]["phases"]) if p == 1][1:]
    ratio = frozen / statistics.median(phase1)
    print(f"(b) epoch / (c) first-phase epoch after the first: {ratio:.0f}x (goal: >= 20x)")
    with open(os.path.join(args.output, "finetune.json"), "w") as f:
        json.dump(dict(vars(args), results=results, phase1_speedup=ratio), f, indent=1)


if __name__ == "__main__":
    main()

"""How fast TensorFlow computes the filter gradients of GoogLeNet's largest convolutions, against
the same gradient written as one matrix product per filter tap, and against the forward pass.

    python scripts/time_filter_gradients.py [--batch-size 32] [--repeats 7] [--train-rounds N]
        [--precision float32|mixed_bfloat16]

``--train-rounds N`` then times the paper variant's whole training step (224 px, batch 32,
through ``fit`` and as plain Keras ``train_on_batch``, as the benchmark does) N times each way,
alternating: with TF's filter-gradient kernel everywhere, and with the per-tap form wherever the
layer's shapes allow (as the model ships on an x86 CPU without AVX-512).
``--precision mixed_bfloat16`` times the gradients in bfloat16 and trains under that policy.

``scripts/profile_train_step.py --names N`` shows which layers' filter gradients take the most
of a training step; this script times those layers' gradient alone at batch 32, 224 px shapes.
The per-tap form (``inception_keras.layers.per_tap_filter_gradient``, what the model's
convolutions use in training): for a KxK filter, ``dW[i, j] = X(shifted by i, j)^T @ dY`` over
every pixel of the batch - K*K matrix products with a long inner dimension. Medians of
wall-clock ms; GFLOP is 2 x the multiply-adds of one pass.
"""

import argparse
import statistics

import inception_keras  # noqa: F401  before TensorFlow, for its CPU kernels (inception_keras.runtime)

# isort: split
import tensorflow as tf

from inception_keras.benchmark import BenchmarkConfig
from inception_keras.benchmark.measure import (
    plain_keras_train_throughput,
    synthetic_batches,
    train_throughput,
)
from inception_keras.layers import Conv2D, per_tap_filter_gradient
from inception_keras.timing import timed_calls

# (layer, input side, input channels, output channels, kernel), Table 1 at 224 px. The model
# keeps TF's kernel for 5x5 filters and thin inputs: the 5x5 row and the last one (conv1's 7x7
# and 3 input channels, at stride 1) show why.
LAYERS = (
    ("conv2 3x3", 56, 64, 192, 3),
    ("inception_3a_3x3", 28, 96, 128, 3),
    ("inception_3b_3x3", 28, 128, 192, 3),
    ("inception_3b_5x5", 28, 32, 96, 5),
    ("inception_4e_3x3", 14, 160, 320, 3),
    ("inception_3b_1x1", 28, 256, 128, 1),
    ("7x7, 3 channels", 112, 3, 64, 7),
)


def median_ms(function, arguments, repeats):
    """Median wall-clock ms of ``function(*arguments)``, its result fetched, after one warm-up."""

    def run(arguments):
        return function(*arguments).numpy()

    return statistics.median(timed_calls(run, arguments, repeats, warmup=1)) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--train-rounds", type=int, default=0)
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16"), default="float32")
    args = parser.parse_args()
    filter_gradients(args)
    if args.train_rounds:
        training_steps(args.train_rounds, args.precision)


def training_steps(rounds, precision):
    """Training img/s with TF's filter-gradient kernel everywhere and with the per-tap form where
    the layer's shapes allow it, whatever this machine is."""
    config = BenchmarkConfig().resolved()
    print(f"\ntraining step, paper variant, 224 px, batch 32, {precision} (img/s):")
    for round_ in range(rounds):
        for label, per_tap in (("TF's kernel", False), ("per-tap", True)):
            Conv2D.PER_TAP_FILTER_GRADIENT = per_tap  # read when the step is traced
            fit = train_throughput(config, precision, False, synthetic_batches(config))
            plain = plain_keras_train_throughput(config, precision)
            print(f"  round {round_ + 1} {label:12s} fit {fit:5.2f}  plain Keras {plain:5.2f}")
    Conv2D.PER_TAP_FILTER_GRADIENT = None


def filter_gradients(args):
    print(
        f"{'layer':18s} {'GFLOP':>6s} {'forward ms':>11s} {'TF filter grad ms':>18s} "
        f"{'per-tap ms':>11s} {'speed-up':>12s} {'max rel diff':>12s}"
    )
    dtype = tf.bfloat16 if args.precision == "mixed_bfloat16" else tf.float32
    for name, side, cin, cout, kernel in LAYERS:
        x = tf.random.normal([args.batch_size, side, side, cin], dtype=dtype)
        dy = tf.random.normal([args.batch_size, side, side, cout], dtype=dtype)
        w = tf.random.normal([kernel, kernel, cin, cout], dtype=dtype)
        forward = tf.function(lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"))
        native = tf.function(
            lambda x, dy, k=kernel, c=(cin, cout): tf.raw_ops.Conv2DBackpropFilter(
                input=x, filter_sizes=[k, k, *c], out_backprop=dy, strides=[1] * 4, padding="SAME"
            )
        )
        per_tap = tf.function(lambda x, dy, k=kernel: per_tap_filter_gradient(x, dy, (k, k)))
        reference, ours = native(x, dy), per_tap(x, dy)
        reference, ours = tf.cast(reference, tf.float32), tf.cast(ours, tf.float32)
        diff = float(tf.reduce_max(tf.abs(reference - ours)) / tf.reduce_max(tf.abs(reference)))
        gflop = 2 * args.batch_size * side * side * cin * cout * kernel * kernel / 1e9
        f_ms = median_ms(forward, (x, w), args.repeats)
        n_ms = median_ms(native, (x, dy), args.repeats)
        t_ms = median_ms(per_tap, (x, dy), args.repeats)
        print(
            f"{name:18s} {gflop:6.1f} {f_ms:11.1f} {n_ms:18.1f} {t_ms:11.1f} "
            f"{n_ms / t_ms:11.2f}x {diff:12.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main()

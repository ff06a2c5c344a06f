"""How fast TensorFlow computes the filter gradients of GoogLeNet's largest convolutions, against
the same gradient written as one matrix product per filter tap, and against the forward pass.

    python scripts/time_filter_gradients.py [--batch-size 32] [--repeats 7]

``scripts/profile_train_step.py --names N`` shows which layers' filter gradients take the most
of a training step; this script times those layers' gradient alone at batch 32, 224 px shapes.
The per-tap form: for a KxK filter, ``dW[i, j] = X(shifted by i, j)^T @ dY`` over every pixel of
the batch - K*K matrix products with a long inner dimension, which run at the matrix-multiply
rate. Medians of wall-clock ms; GFLOP/s counts 2 x multiply-adds.
"""

import argparse
import statistics
import time

import inception_keras  # noqa: F401  before TensorFlow, for its CPU kernels (inception_keras.runtime)

# isort: split
import tensorflow as tf

# (layer, input side, input channels, output channels, kernel, stride), Table 1 at 224 px.
LAYERS = (
    ("conv1 7x7/2", 224, 3, 64, 7, 2),
    ("conv2 3x3", 56, 64, 192, 3, 1),
    ("inception_3a_3x3", 28, 96, 128, 3, 1),
    ("inception_3b_3x3", 28, 128, 192, 3, 1),
    ("inception_4e_3x3", 14, 160, 320, 3, 1),
    ("inception_3b_1x1", 28, 256, 128, 1, 1),
)


def per_tap_filter_gradient(x, dy, kernel, stride):
    """``Conv2DBackpropFilter`` of a SAME-padded convolution as one matrix product per tap."""
    _, side, _, channels = x.shape
    out = dy.shape[1]
    total = max((out - 1) * stride + kernel - side, 0)
    before = total // 2
    padded = tf.pad(x, [[0, 0], [before, total - before], [before, total - before], [0, 0]])
    flat_dy = tf.reshape(dy, [-1, dy.shape[-1]])
    taps = [
        [
            tf.matmul(
                tf.reshape(
                    padded[:, i : i + stride * out : stride, j : j + stride * out : stride, :],
                    [-1, channels],
                ),
                flat_dy,
                transpose_a=True,
            )
            for j in range(kernel)
        ]
        for i in range(kernel)
    ]
    return tf.stack([tf.stack(row) for row in taps])


def median_ms(function, arguments, repeats):
    function(*arguments).numpy()  # trace, warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(*arguments).numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(
        f"{'layer':18s} {'GFLOP':>6s} {'forward ms':>11s} {'TF filter grad ms':>18s} "
        f"{'per-tap ms':>11s} {'per-tap / TF':>12s} {'max rel diff':>12s}"
    )
    for name, side, cin, cout, kernel, stride in LAYERS:
        out = -(-side // stride)
        x = tf.random.normal([args.batch_size, side, side, cin])
        dy = tf.random.normal([args.batch_size, out, out, cout])
        w = tf.random.normal([kernel, kernel, cin, cout])
        strides = [1, stride, stride, 1]
        forward = tf.function(lambda x, w, s=strides: tf.nn.conv2d(x, w, s, "SAME"))
        native = tf.function(
            lambda x, dy, k=kernel, c=(cin, cout), s=strides: tf.raw_ops.Conv2DBackpropFilter(
                input=x, filter_sizes=[k, k, *c], out_backprop=dy, strides=s, padding="SAME"
            )
        )
        per_tap = tf.function(
            lambda x, dy, k=kernel, s=stride: per_tap_filter_gradient(x, dy, k, s)
        )
        reference, ours = native(x, dy), per_tap(x, dy)
        diff = float(tf.reduce_max(tf.abs(reference - ours)) / tf.reduce_max(tf.abs(reference)))
        gflop = 2 * args.batch_size * out * out * cin * cout * kernel * kernel / 1e9
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

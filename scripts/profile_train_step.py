"""Where the time of one training step goes: an op-type breakdown from a TF profiler trace, and
the LRN layer's forward + backward time with TF's gradient and with ours.

    python scripts/profile_train_step.py [float32|mixed_bfloat16] [--steps N] [--names N]
        [--variant paper|bn|slim]

The README's "Performance" notes quote this script's output. It is evidence for the benchmark's
numbers (``inception-keras benchmark``), not a benchmark itself: the profiler adds overhead.
TensorFlow runs independent ops at once on different threads, and each then counts its whole
duration, so the times add up to more than the step; ``TF_NUM_INTEROP_THREADS=1`` runs one op at a
time, and the times add up to about the step.
"""

import argparse
import collections
import glob
import statistics
import tempfile
import time

import inception_keras  # noqa: F401  before TensorFlow, for its CPU kernels (inception_keras.runtime)

# isort: split
import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from inception_keras import LocalResponseNormalization
from inception_keras.benchmark import BenchmarkConfig
from inception_keras.benchmark.measure import synthetic_batches, training_model
from inception_keras.training import training_targets

# Trace events that contain other ops rather than being kernels themselves.
CONTAINERS = ("Process", "Run", "__inference", "MakeIterator", "Dataset")


def kernel_times(run):
    """``{(op name, op type): ms}`` of the TensorFlow ops ``run()`` executes on the CPU, summed
    over threads, from a profiler trace."""
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        run()
        tf.profiler.experimental.stop()
        (path,) = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
    totals = collections.Counter()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" not in name:  # TF op events are "op name:OpType"
                    continue
                if not any(c in name for c in CONTAINERS):
                    totals[tuple(name.rsplit(":", 1))] += event.duration_ps / 1e9
    return totals


def op_breakdown(precision, steps, variant="paper"):
    """``{(op name, op type): ms per step}`` of ``variant``'s training step at 224x224,
    batch 32."""
    config = BenchmarkConfig(variant=variant)
    model = training_model(config, precision, jit_compile=False)
    data = training_targets(synthetic_batches(config), 1000)
    model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)  # trace, warm up
    times = kernel_times(lambda: model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0))
    return collections.Counter({key: ms / steps for key, ms in times.items()})


def lrn_timings(repeats=7):
    """Forward + backward ms of GoogLeNet's norm1 and norm2 at batch 32: TF's op and gradient
    (inference path) against the layer's training path."""
    out = {}
    for shape in ((32, 56, 56, 64), (32, 56, 56, 192)):
        x = tf.random.normal(shape) * 3
        layer = LocalResponseNormalization()
        for training in (False, True):

            @tf.function
            def step(x, layer=layer, training=training):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    loss = tf.reduce_sum(layer(x, training=training))
                return tape.gradient(loss, x)

            step(x)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                step(x).numpy()
                times.append(time.perf_counter() - start)
            out[shape, training] = statistics.median(times) * 1e3
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "precision",
        nargs="?",
        default="float32",
        choices=("float32", "mixed_bfloat16", "mixed_float16"),
    )
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--variant", default="paper", choices=("paper", "bn", "slim"))
    parser.add_argument(
        "--names",
        type=int,
        default=0,
        metavar="N",
        help="also list the N op names (layers) with the most time in each of the 3 top op types",
    )
    args = parser.parse_args()

    by_name = op_breakdown(args.precision, args.steps, args.variant)
    totals = collections.Counter()
    for (_, op_type), ms in by_name.items():
        totals[op_type] += ms
    total = sum(totals.values())
    print(
        f"{args.variant} variant, {args.precision} training step, kernel time per step summed "
        f"over threads: {total:.0f} ms"
    )
    for op_type, ms in totals.most_common(15):
        print(f"  {op_type:42s} {ms:8.1f} ms  {ms / total:6.1%}")
    for op_type, type_ms in totals.most_common(3) if args.names else ():
        print(f"\n{op_type}, by op name:")
        names = collections.Counter({n: ms for (n, t), ms in by_name.items() if t == op_type})
        for name, ms in names.most_common(args.names):
            print(f"  {name[-70:]:70s} {ms:8.1f} ms  {ms / type_ms:6.1%}")
    print(
        "\nLRN forward + backward at batch 32 (TF's LRN and LRNGrad | the layer's training path):"
    )
    timings = lrn_timings()
    for shape in ((32, 56, 56, 64), (32, 56, 56, 192)):
        print(
            f"  {'x'.join(map(str, shape)):14s} {timings[shape, False]:7.1f} ms | "
            f"{timings[shape, True]:7.1f} ms"
        )


if __name__ == "__main__":
    main()

"""Where a short training run's wall time goes: the first train call (tracing the step), the
steady calls, validation and the end-of-epoch writes, for a preset's real run.

    python scripts/time_train_start.py [--preset quickstart] [--steps 24] [OPTION=VALUE ...]

OPTION=VALUE pairs override the preset like ``ik.train``'s options (``steps_per_execution=1``).
The run goes to a temporary directory. docs/performance.md quotes this script's output.
"""

import argparse
import ast
import statistics
import tempfile
import time

import inception_keras  # noqa: F401  before TensorFlow, for its CPU kernels (inception_keras.runtime)

# isort: split
import keras

from inception_keras import training
from inception_keras.run_config import run_configs


class _Marks(keras.callbacks.Callback):
    """Seconds since ``start`` at each train call's end and at the run's phases."""

    def __init__(self, start):
        super().__init__()
        self.start, self.calls, self.phases = start, [], {}
        self._call_start = None

    def _now(self):
        return time.perf_counter() - self.start

    def on_train_begin(self, logs=None):
        self.phases["fit started"] = self._now()

    def on_train_batch_begin(self, batch, logs=None):
        self._call_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(time.perf_counter() - self._call_start)

    def on_test_begin(self, logs=None):
        self.phases.setdefault("validation started", self._now())

    def on_test_end(self, logs=None):
        self.phases.setdefault("validation ended", self._now())

    def on_train_end(self, logs=None):
        self.phases["fit ended"] = self._now()


def parse_options(pairs):
    """``["epochs=3", "augment=False"]`` -> ``{"epochs": 3, "augment": False}``: Python literals,
    anything else kept as a string."""
    options = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            options[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[name] = value
    return options


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="quickstart")
    parser.add_argument("--steps", type=int, default=24, help="training steps (one epoch)")
    parser.add_argument("options", nargs="*", metavar="OPTION=VALUE")
    args = parser.parse_args()
    options = parse_options(args.options)
    with tempfile.TemporaryDirectory() as out:
        config, data_config = run_configs(
            args.preset, epochs=1, steps_per_epoch=args.steps, output_dir=out, **options
        )
        marks = _Marks(time.perf_counter())
        training.train(config, data_config, verbose=0, extra_callbacks=[marks])
        total = time.perf_counter() - marks.start
    images = data_config.batch_size * config.steps_per_execution
    steady = statistics.median(marks.calls[1:]) if len(marks.calls) > 1 else None
    print(f"preset {args.preset}, {args.steps} steps, options {options or 'none'}")
    rows = [
        ("first train call (traces the step)", f"{marks.calls[0]:6.1f} s"),
        (
            "steady train call (median)",
            f"{steady:6.2f} s = {images / steady:.1f} img/s" if steady else "(one call only)",
        ),
        *((phase, f"{seconds:6.1f} s") for phase, seconds in marks.phases.items()),
        ("whole train() call (data loading included)", f"{total:6.1f} s"),
    ]
    for label, value in rows:
        print(f"{label + ':':45s}{value}")


if __name__ == "__main__":
    main()

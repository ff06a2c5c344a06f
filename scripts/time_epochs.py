"""A preset's full training run, epoch by epoch: validation top-1 and where each epoch's time goes.

    python scripts/time_epochs.py [--preset quickstart] [OPTION=VALUE ...]

OPTION=VALUE pairs override the preset like ``ik.train``'s options (``epochs=3``,
``batch_size=32``, ``augment=False``). For each epoch it prints the train calls (the first one
traces the step), the gap between the last train call and validation, validation, the epoch's
validation top-1 and the seconds since the start; then the whole run. The run goes to a
temporary directory. docs/performance.md quotes this script's output.
"""

import argparse
import statistics
import tempfile
import time

import inception_keras  # noqa: F401  before TensorFlow, for its CPU kernels (inception_keras.runtime)

# isort: split
import keras
from time_train_start import parse_options  # this folder is on sys.path when a script runs

from inception_keras import training
from inception_keras.run_config import run_configs


class _EpochMarks(keras.callbacks.Callback):
    """Prints one line per epoch: its phases, its validation top-1, the time since ``start``."""

    def __init__(self, start):
        super().__init__()
        self.start = start

    def _now(self):
        return time.perf_counter() - self.start

    def on_epoch_begin(self, epoch, logs=None):
        self.calls, self.last_call_end, self.test = [], None, {}

    def on_train_batch_begin(self, batch, logs=None):
        self.call_start = self._now()

    def on_train_batch_end(self, batch, logs=None):
        self.last_call_end = self._now()
        self.calls.append(self.last_call_end - self.call_start)

    def on_test_begin(self, logs=None):
        self.test["begin"] = self._now()

    def on_test_end(self, logs=None):
        self.test["end"] = self._now()

    def on_epoch_end(self, epoch, logs=None):
        calls = self.calls
        print(
            f"epoch {epoch}: {len(calls)} train calls {sum(calls):6.1f} s (first {calls[0]:5.1f} s,"
            f" median {statistics.median(calls):5.2f} s), last call -> validation "
            f"{self.test['begin'] - self.last_call_end:5.1f} s, validation "
            f"{self.test['end'] - self.test['begin']:5.1f} s, val top-1 "
            f"{logs['val_predictions_top1']:.3f}, at {self._now():6.1f} s",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="quickstart")
    parser.add_argument("options", nargs="*", metavar="OPTION=VALUE")
    args = parser.parse_args()
    options = parse_options(args.options)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        config, data_config = run_configs(args.preset, output_dir=out, **options)
        print(f"preset {args.preset}, options {options or 'none'}", flush=True)
        result = training.train(
            config, data_config, verbose=0, extra_callbacks=[_EpochMarks(start)]
        )
    print(
        f"whole train() call: {time.perf_counter() - start:.1f} s, best val top-1 "
        f"{result.best_val_top1:.3f}"
    )


if __name__ == "__main__":
    main()

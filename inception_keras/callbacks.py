"""The callbacks of a training run: throughput, the learning rate, the epoch history and its
curves, the resume backup and the checkpoints - each file written atomically, so a run killed at
any moment resumes cleanly."""

import contextlib
import csv
import math
import os
import shutil
import sys
import time

import keras

from inception_keras import logs
from inception_keras.files import (
    BACKUP_DIR,
    BEST_CHECKPOINT,
    BEST_MONITOR,
    BEST_SCORE_FILE,
    HISTORY_FILE,
    LAST_CHECKPOINT,
    atomic_output,
    read_history,  # noqa: F401 (re-exported: part of the training API)
    read_json,
    read_rows,
    write_json,
)
from inception_keras.plots.curves import plot_runs


class DropLogs(keras.callbacks.Callback):
    """Removes ``keys`` from each epoch's logs. First in the list, so that no later callback -
    the history file, the checkpoints' scores, TensorBoard, and Keras' own ``History`` and
    progress bar, which Keras appends after the given ones - sees them."""

    def __init__(self, keys):
        super().__init__()
        self.keys = tuple(keys)

    def on_epoch_end(self, epoch, logs=None):
        for key in self.keys:
            (logs or {}).pop(key, None)


class EpochLogs(keras.callbacks.Callback):
    """Puts ``fixed`` values (e.g. ``{"phase": 2}``) into each epoch's logs, and gives the metrics
    of a one-output model the names a three-output run logs (``top1`` ->
    ``predictions_top1``, ``val_top1`` -> ``val_predictions_top1``), so that every run's
    ``history.csv``, checkpoints and curves read alike. Placed before the callbacks that read
    the logs."""

    def __init__(self, fixed=None, prefix="predictions_", metrics=("top1", "top5")):
        super().__init__()
        self.fixed, self.prefix, self.metrics = dict(fixed or {}), prefix, metrics

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for name in self.metrics:
            for key in (name, f"val_{name}"):
                if key in logs:
                    logs[key.replace(name, self.prefix + name)] = logs.pop(key)
        logs.update(self.fixed)


class Throughput(keras.callbacks.Callback):
    """Adds ``images_per_sec`` (training steps only, validation excluded) to each epoch's logs."""

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = batch_size

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._val_time, self._steps = time.perf_counter(), 0.0, 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps = batch + 1  # counted: a set that skips bad files has no known length

    def on_test_begin(self, logs=None):
        self._val_start = time.perf_counter()

    def on_test_end(self, logs=None):
        self._val_time += time.perf_counter() - self._val_start

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._start - self._val_time
        if logs is not None and elapsed > 0:
            logs["images_per_sec"] = self._steps * self.batch_size / elapsed


class LearningRate(keras.callbacks.Callback):
    """Adds ``learning_rate`` to each epoch's logs: the optimizer's rate at the end of the epoch
    (the schedule's value for the next step), the value and name Keras' own learning-rate
    callbacks log. The optimizer's schedule is otherwise invisible in the history."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            rate = self.model.optimizer.learning_rate
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(rate))


class EpochHistory(keras.callbacks.Callback):
    """``history.csv``: one row per finished epoch, the whole file rewritten atomically each time.

    Written by hand because Keras' ``CSVLogger`` appends in place: a kill mid-write leaves a torn
    row, and an epoch re-run after a resume would appear twice. Here a re-run epoch replaces its
    row, and rows of epochs not yet (re-)run are dropped when the run starts.
    """

    def __init__(self, path):
        super().__init__()
        self.path, self.rows = path, None

    def on_epoch_begin(self, epoch, logs=None):
        if self.rows is None:  # this process's first epoch: 0, or where a resume starts
            previous = read_rows(self.path) if os.path.exists(self.path) else []
            self.rows = [row for row in previous if float(row["epoch"]) < epoch]

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch, **{key: float(value) for key, value in (logs or {}).items()}}
        self.rows = [r for r in self.rows if float(r["epoch"]) != epoch] + [row]
        columns = ["epoch"] + sorted({key for r in self.rows for key in r} - {"epoch"})
        with atomic_output(self.path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, columns, restval="")
            writer.writeheader()
            writer.writerows(self.rows)


class TrainingCurves(keras.callbacks.Callback):
    """``curves.png``: ``history.csv`` drawn after each epoch, written atomically.

    Drawn from the file rather than from this process's logs, so a resumed run draws one curve
    through the epochs before its interruption, and the picture is the one ``inception-keras
    plot`` draws from the same folder.
    """

    def __init__(self, output_dir):
        super().__init__()
        self.output_dir = output_dir

    def on_epoch_end(self, epoch, logs=None):
        plot_runs([self.output_dir])


class RunCheckpoints(keras.callbacks.Callback):
    """``last.keras`` after every epoch, ``best.keras`` when validation top-1 improves, each
    written atomically, and ``best_score.json`` with the scores ``best.keras`` was saved with.
    ``saved``: the model to write, if not the one being trained (which then updates its weights).

    Written by hand because Keras' ``ModelCheckpoint`` writes in place (a kill mid-save leaves a
    truncated file) and starts every process with no best score, so after a resume a worse epoch
    could replace ``best.keras``. Here the best score is read back from ``best_score.json``.
    """

    def __init__(self, output_dir, monitor=BEST_MONITOR, ema=None, saved=None):
        super().__init__()
        self.output_dir, self.monitor, self.ema = output_dir, monitor, ema
        self.saved = saved  # the model written, when not the one trained (a head on features)

    def on_train_begin(self, logs=None):
        self.best = best_scores(self.output_dir).get(self.monitor, -math.inf)
        # The resume backup is written before the checkpoints, so a run killed between the two
        # restarts from an epoch whose checkpoints may be missing: write them now, from the
        # restored weights and the scores history.csv holds for that epoch. ``_initial_epoch`` is
        # where Keras' BackupAndRestore puts the restored epoch count (pinned Keras range).
        done = getattr(self.model, "_initial_epoch", None) or 0
        if done:
            self._write_restored(done - 1)

    def _write_restored(self, epoch):
        history = os.path.join(self.output_dir, HISTORY_FILE)
        rows = read_rows(history) if os.path.exists(history) else []
        logs = next(
            (
                {k: float(v) for k, v in row.items() if k != "epoch" and v not in ("", None)}
                for row in rows
                if float(row["epoch"]) == epoch
            ),
            {},
        )
        if self.ema is not None:  # the checkpoints hold the averaged weights
            self.ema.on_test_begin()
        try:
            self.on_epoch_end(epoch, logs)
        finally:
            if self.ema is not None:
                self.ema.on_test_end()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        last = os.path.join(self.output_dir, LAST_CHECKPOINT)
        _save_atomically(self.saved or self.model, last)
        score = logs.get(self.monitor)
        if score is not None and float(score) > self.best:
            # The same model as last.keras: copying its bytes is much quicker than saving again.
            with atomic_output(os.path.join(self.output_dir, BEST_CHECKPOINT), ".keras") as tmp:
                shutil.copyfile(last, tmp)
            scores = {k: float(v) for k, v in logs.items() if k.startswith("val_")}
            write_json(os.path.join(self.output_dir, BEST_SCORE_FILE), dict(scores, epoch=epoch))
            self.best = float(score)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' resume backup, with its two files written atomically.

    Keras writes them in place, so a kill during the write leaves a backup the resume cannot
    load. This overrides the one private method that writes them (pinned Keras range in setup.cfg;
    the kill-and-resume tests fail loudly if it changes).
    """

    def _save_model(self):
        with atomic_output(self._weights_path, suffix=".weights.h5") as tmp:
            self.model.save_weights(tmp, overwrite=True)
        write_json(
            self._training_metadata_path,
            {"epoch": self._current_epoch, "batch": self._last_batch_seen},
        )


def best_scores(output_dir):
    """The validation scores ``best.keras`` in ``output_dir`` was saved with (``{}`` if none)."""
    path = os.path.join(output_dir, BEST_SCORE_FILE)
    if not os.path.exists(os.path.join(output_dir, BEST_CHECKPOINT)) or not os.path.exists(path):
        return {}
    return read_json(path) or {}


def _save_atomically(model, path):
    with atomic_output(path, suffix=".keras") as tmp:
        model.save(tmp)


def training_callbacks(
    config, batch_size, drop_logs=(), *, epoch_logs=None, backup=True, ema=None, saved=None
):
    """Throughput, learning rate, history, curves, resume backup, EMA swap, checkpoints, logs:
    in an order that matters.

    ``drop_logs``: keys of the epoch logs no callback should see (:class:`DropLogs`, first).
    ``epoch_logs``: an :class:`EpochLogs` run next (values every row carries, metric names).
    ``backup``: write the resume backup (a phase that reruns from its start needs none).
    ``ema``: swap in the averaged weights (default: ``config.ema``). ``saved``: the model the
    checkpoints hold, when not the one trained (:class:`RunCheckpoints`).

    The learning rate joins the epoch's logs before they are written. The history row of an
    epoch and its curves are written before its backup, so an epoch the backup counts as done is
    always in ``history.csv`` and ``curves.png`` (one re-run after a kill replaces its row). The
    backup comes before ``SwapEMAWeights`` so it holds the raw weights and the EMA slots as they
    are; the checkpoints come after it so they hold the averaged weights. A kill between the backup
    and the checkpoints is mended at resume: ``RunCheckpoints`` writes the restored epoch's.
    """
    out = config.output_dir
    result = [DropLogs(drop_logs), *([epoch_logs] if epoch_logs else [])]
    result += [
        keras.callbacks.TerminateOnNaN(),
        Throughput(batch_size),
        LearningRate(),
        EpochHistory(os.path.join(out, HISTORY_FILE)),
        TrainingCurves(out),
    ]
    if backup:
        result.append(AtomicBackupAndRestore(os.path.join(out, BACKUP_DIR)))
    swap = None
    if config.ema if ema is None else ema:
        swap = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
        result.append(swap)
    result += [
        RunCheckpoints(out, ema=swap, saved=saved),
        keras.callbacks.TensorBoard(os.path.join(out, "logs"), write_graph=False),
    ]
    return result


def progress_verbosity(verbose="auto", stream=None):
    """Keras' ``verbose`` for ``model.fit``: ``"auto"`` is the progress bar (1) on a terminal and
    one line per epoch (2) anywhere else (a log file, CI, a pipe), where the bar's carriage-return
    redraws would pile up as unreadable text. Any other value is returned as it is.
    """
    if verbose != "auto":
        return verbose
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)  # replaced streams may lack it
    return 1 if isatty is not None and isatty() else 2


def validation_end_is_not_a_warning():
    """Keras before 3.16 warns "Your input ran out of data; interrupting training" whenever a set
    of unknown length ends, which is how it learns that length (keras-team/keras#23360, fixed in
    3.16). ``fit`` hides the validation set's length on purpose, and its training stream never
    ends (steps per epoch, an endless stream), so in ``fit`` the warning only ever reports the
    validation pass's normal end."""
    major, minor = (int(part) for part in keras.__version__.split(".")[:2])
    if (major, minor) >= (3, 16):
        return contextlib.nullcontext()
    return logs.ignoring_warnings(r"Your input ran out of data; interrupting training", UserWarning)

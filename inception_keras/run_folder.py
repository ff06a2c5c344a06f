"""A training run's folder: whether a run may write there (and whether it resumes), the files it
starts from, and what a finished run holds (:class:`TrainResult`). Shared by
:func:`inception_keras.training.fit` and the ``finetune`` recipe."""

import contextlib
import dataclasses
import os
import statistics

import keras

from inception_keras.callbacks import best_scores
from inception_keras.errors import UsageError
from inception_keras.files import (
    BACKUP_DIR,
    BEST_CHECKPOINT,
    BEST_SCORE_FILE,
    CURVES_FILE,
    DATA_CONFIG_FILE,
    HISTORY_FILE,
    LAST_CHECKPOINT,
    TRAIN_CONFIG_FILE,
    read_history,
    read_json,
    remove_temporaries,
    write_json,
)


@dataclasses.dataclass
class TrainResult:
    """What a run produced, for the end-of-run summary."""

    epochs: int
    best_val_top1: float
    best_val_top5: float
    images_per_sec: float
    best_checkpoint: str
    last_checkpoint: str
    output_dir: str
    skipped_files: int = 0
    history: dict = dataclasses.field(default_factory=dict)
    model: keras.Model | None = None  # the trained model (averaged weights, if EMA)

    @classmethod
    def read(cls, output_dir, model=None):
        """The result of the run in ``output_dir``, from its history and best scores."""
        history = read_history(os.path.join(output_dir, HISTORY_FILE))
        best = best_scores(output_dir)
        return cls(
            epochs=len(history["epoch"]),
            best_val_top1=best["val_predictions_top1"],
            best_val_top5=best["val_predictions_top5"],
            # The median epoch: the first one also pays for tracing and compilation.
            images_per_sec=statistics.median(history["images_per_sec"]),
            best_checkpoint=os.path.join(output_dir, BEST_CHECKPOINT),
            last_checkpoint=os.path.join(output_dir, LAST_CHECKPOINT),
            output_dir=output_dir,
            history=history,
            model=model,
        )

    def summary(self):
        return "\n".join(
            [
                f"Trained {self.epochs} epochs; best validation top-1 {self.best_val_top1:.2%}, "
                f"top-5 {self.best_val_top5:.2%}; {self.images_per_sec:.1f} images/s (training).",
                f"Best checkpoint: {self.best_checkpoint}",
                f"Last checkpoint: {self.last_checkpoint}",
                f"Logs: {os.path.join(self.output_dir, HISTORY_FILE)} (drawn in "
                f"{os.path.join(self.output_dir, CURVES_FILE)}), TensorBoard in "
                f"{os.path.join(self.output_dir, 'logs')}",
                f"Skipped unreadable files: {self.skipped_files}",
            ]
        )


RUN_FILES = (
    BEST_CHECKPOINT,
    LAST_CHECKPOINT,
    BEST_SCORE_FILE,
    HISTORY_FILE,
    CURVES_FILE,
    TRAIN_CONFIG_FILE,
    DATA_CONFIG_FILE,
)
BACKUP_FILES = ("latest.weights.h5", "training_metadata.json")  # Keras' names in backup/

# Settings that a resumed run must share with the interrupted one: its backup holds weights of
# this shape, trained this way.
_RESUME_FIELDS = ("variant", "image_size", "num_classes", "recipe", "optimizer", "epochs")


def check_output_dir(config, num_classes):
    """Whether the run in ``config.output_dir`` resumes; refuses, before anything is written,
    a directory it must not write into. An interrupted run (a resume backup in ``backup/``)
    resumes; a finished one is replaced only with ``overwrite``."""
    out = config.output_dir
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"`output_dir` {out!r} is a file, not a directory.")
    parent = out if os.path.isdir(out) else os.path.dirname(os.path.abspath(out))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"`output_dir` {out!r}: no permission to write in {parent!r}.")
    if os.path.isdir(os.path.join(out, BACKUP_DIR)):
        previous = read_json(os.path.join(out, TRAIN_CONFIG_FILE)) or {}
        now = dict(dataclasses.asdict(config), num_classes=num_classes)
        changed = [f for f in _RESUME_FIELDS if f in previous and previous[f] != now[f]]
        if changed:
            raise UsageError(
                f"`output_dir` {out!r} holds an interrupted run with different settings ("
                + ", ".join(f"{f} {previous[f]!r}, now {now[f]!r}" for f in changed)
                + "): rerun it with its settings to resume, or choose another output_dir."
            )
        return True
    finished = [
        name
        for name in (BEST_CHECKPOINT, LAST_CHECKPOINT, HISTORY_FILE)
        if os.path.exists(os.path.join(out, name))
    ]
    if finished and not config.overwrite:
        raise UsageError(
            f"`output_dir` {out!r} holds a finished run ({', '.join(finished)}): choose another "
            "output_dir, or set overwrite (--overwrite) to replace it."
        )
    return False


def prepare_run_folder(config, resuming, num_classes, class_names=None, data_config=None):
    """Makes the folder, removes what a killed run left half-written and - unless the run
    resumes - the files of the finished run it replaces, then writes the run's settings
    (``train_config.json``, and ``data_config.json``, which export reads back for int8
    calibration images)."""
    out = config.output_dir
    os.makedirs(out, exist_ok=True)
    # What a killed run left half-written: never read, removed before this run writes its own.
    remove_temporaries(out, RUN_FILES)
    remove_temporaries(os.path.join(out, BACKUP_DIR), BACKUP_FILES)
    if not resuming:  # a fresh run, or one replacing a finished run (overwrite)
        for name in (HISTORY_FILE, CURVES_FILE, BEST_SCORE_FILE, BEST_CHECKPOINT, LAST_CHECKPOINT):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(out, name))
    settings = dict(
        dataclasses.asdict(config), num_classes=num_classes, class_names=list(class_names or [])
    )
    write_json(os.path.join(out, TRAIN_CONFIG_FILE), settings)
    if data_config is not None:
        data_settings = dataclasses.asdict(data_config.with_absolute_folders())
        write_json(os.path.join(out, DATA_CONFIG_FILE), data_settings)

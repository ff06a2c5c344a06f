"""The files a run or an export writes that a later step reads: their names, a tolerant JSON
reader for optional metadata, the epoch history's reader, an atomic file writer, and the atomic
publishing of a whole directory (an exclusive rename, an atomic swap). No dependencies on the rest
of the package."""

import contextlib
import csv
import ctypes
import errno
import glob
import hashlib
import json
import os
import sys
import tempfile

TRAIN_CONFIG_FILE = "train_config.json"  # beside a run's checkpoints
DATA_CONFIG_FILE = "data_config.json"  # the run's data, read back for int8 calibration and verify
HISTORY_FILE = "history.csv"  # one row per finished epoch
CURVES_FILE = "curves.png"  # history.csv drawn, beside it
BEST_CHECKPOINT, LAST_CHECKPOINT = "best.keras", "last.keras"
BEST_SCORE_FILE = "best_score.json"  # the validation scores best.keras was saved with
BEST_MONITOR = "val_predictions_top1"  # the score that chooses best.keras: validation top-1
BACKUP_DIR = "backup"  # a run's resume backup (Keras' BackupAndRestore), while it is unfinished
MANIFEST = "manifest.json"  # in an export's version directory
CLASS_NAMES_ASSET = "class_names.txt"  # in a SavedModel's assets


def metadata_path(checkpoint):
    """The JSON file beside a converted ``.keras`` model with its class names and provenance
    (``bvlc.keras`` -> ``bvlc.json``)."""
    return os.path.splitext(os.fspath(checkpoint))[0] + ".json"


def file_digest(path, algorithm="sha256"):
    """The hex digest of a file's bytes, read in 1 MiB blocks (models are tens of MB)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path):
    """The JSON document in ``path``, or ``None`` when there is no such file."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def json_field(path, key):
    """``key`` of the JSON object in ``path``; ``None`` when the file is missing, unreadable, not
    a JSON object or lacks the key (for optional metadata, where absence is not an error)."""
    try:
        with open(path) as f:
            return json.load(f).get(key)
    except (OSError, ValueError, AttributeError):
        return None


@contextlib.contextmanager
def atomic_output(path, suffix=".tmp"):
    """Yields a temporary path next to ``path`` (ending in ``suffix``, for writers that check the
    extension); renames it onto ``path`` only if the block succeeds.

    A failing write therefore never leaves a partial (or any new) file at ``path``, and an
    existing file there stays intact until the complete new one replaces it. The temporary file
    is in the same directory so the final ``os.replace`` is an atomic rename.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # data on disk before the rename makes it visible
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a model file is meant to be read by others
        os.replace(tmp, path)
        _fsync_directory(directory)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def remove_temporaries(directory, names):
    """Removes what :func:`atomic_output` left of ``names`` in ``directory`` when a process was
    killed mid-write (``.NAME.*``). Only for a directory no other process is writing into."""
    removed = []
    for name in names:
        for path in glob.glob(os.path.join(glob.escape(directory), f".{glob.escape(name)}.*")):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
                removed.append(path)
    return removed


def _fsync_directory(directory):
    """Makes a rename in ``directory`` durable (POSIX; elsewhere a no-op)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json(path, value):
    """Writes ``value`` as indented JSON to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path) as tmp, open(tmp, "w") as f:
        json.dump(value, f, indent=2)


def read_rows(path):
    """The rows of a CSV file with a header, as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_history(path):
    """The CSV log as ``{column: [float per epoch]}`` (NaN where an epoch lacks a column)."""
    rows = read_rows(path)
    columns = list(rows[0]) if rows else []
    return {key: [float(row.get(key) or "nan") for row in rows] for key in columns}


def move_into_place(staged, target, scratch):
    """Renames the finished export to ``target``; an existing ``target`` is swapped out atomically
    (Linux ``renameat2(RENAME_EXCHANGE)``) and its old content left in ``scratch`` for deletion.

    Without an atomic exchange the old version is first renamed into ``scratch``: a server polling
    in that instant may briefly see the version missing, but nothing is ever half-written.
    """
    if rename_exclusive(staged, target):
        return
    if exchange(staged, target):
        return
    old = os.path.join(scratch, "old")
    os.rename(target, old)
    try:
        os.rename(staged, target)
    except BaseException:
        os.rename(old, target)  # put the previous version back before scratch is deleted
        raise


_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2  # <linux/fs.h>


def _renameat2(a, b, flags):
    """Linux ``renameat2(a, b, flags)``: 0 on success, else the errno (``ENOSYS`` where the call
    is unavailable: another system, an old C library)."""
    if not sys.platform.startswith("linux"):
        return errno.ENOSYS
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return errno.ENOSYS
    at_fdcwd = -100  # <fcntl.h> AT_FDCWD
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), flags) == 0:
        return 0
    return ctypes.get_errno()


def exchange(a, b):
    """Atomically swaps two paths with Linux ``renameat2``; False where that is unavailable."""
    return _renameat2(a, b, _RENAME_EXCHANGE) == 0


def rename_exclusive(source, target):
    """Renames the directory ``source`` to ``target`` unless ``target`` exists (then False).

    Atomic, so of two processes claiming one ``target`` exactly one succeeds: Linux
    ``renameat2(RENAME_NOREPLACE)``, elsewhere (or on a file system without it) a plain rename,
    which fails onto a non-empty directory - and a version directory is never empty.
    """
    error = _renameat2(source, target, _RENAME_NOREPLACE)
    if error == 0:
        return True
    if error == errno.EEXIST:
        return False
    if error not in (errno.ENOSYS, errno.EINVAL):  # EINVAL: the file system lacks the flag
        raise OSError(error, os.strerror(error), target)
    try:
        os.rename(source, target)
    except (FileExistsError, NotADirectoryError):
        return False
    except OSError as failure:
        if failure.errno == errno.ENOTEMPTY:
            return False
        raise
    return True

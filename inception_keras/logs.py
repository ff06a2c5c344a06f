"""What of the libraries' own logging reaches the user.

Two kinds of lines are kept off the terminal, each named exactly, never by silencing a stream:

- TensorFlow's start-up lines, for the command line only (:func:`import_tensorflow_quietly`): a
  Python user who imports the package keeps TensorFlow's defaults.
- Single messages of Keras, tensorflow-datasets and TensorFlow that a user cannot act on, each
  dropped only around the call that causes it (:func:`ignoring_warnings`,
  :func:`ignoring_log_records`, and for what C++ code writes to file descriptor 2,
  :func:`dropping_stderr_lines`, which passes every other line through a child Python process);
  the call sites say why each one is noise.

``INCEPTION_KERAS_VERBOSE=1`` (the command line's ``--verbose`` sets it) shows all of them.

Imports no TensorFlow: the command line calls it before TensorFlow is imported.
"""

import contextlib
import ctypes
import logging
import os
import re
import subprocess
import sys
import warnings

VERBOSE_VARIABLE = "INCEPTION_KERAS_VERBOSE"
TF_LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# TensorFlow's C++ log level for the command line: no INFO lines; warnings and errors are shown.
QUIET_TF_LOG_LEVEL = "1"


def verbose():
    """Whether the user asked to see everything (``INCEPTION_KERAS_VERBOSE`` set, and not to 0)."""
    return os.environ.get(VERBOSE_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def ignoring_warnings(message, category=Warning, module=""):
    """Inside, Python warnings of ``category`` whose text matches the regular expression
    ``message`` (from a module matching ``module``) are not shown; all others are, and the
    caller's warning filters are back as they were afterwards. Nothing is dropped when
    :func:`verbose`."""
    with warnings.catch_warnings():
        if not verbose():
            warnings.filterwarnings("ignore", message=message, category=category, module=module)
        yield


class _MessageFilter(logging.Filter):
    def __init__(self, patterns):
        super().__init__()
        self.patterns = [re.compile(pattern) for pattern in patterns]

    def filter(self, record):
        message = record.getMessage()
        return not any(pattern.search(message) for pattern in self.patterns)


@contextlib.contextmanager
def ignoring_log_records(logger, *patterns):
    """Inside, records of the Python logger named ``logger`` whose message matches one of the
    regular expressions ``patterns`` are dropped; all others pass. Nothing is dropped when
    :func:`verbose`."""
    if verbose():
        yield
        return
    target, message_filter = logging.getLogger(logger), _MessageFilter(patterns)
    target.addFilter(message_filter)
    try:
        yield
    finally:
        target.removeFilter(message_filter)


@contextlib.contextmanager
def dropping_stderr_lines(*patterns):
    """Inside, lines written to file descriptor 2 (C++ libraries' logs included) that match one
    of the regular expressions ``patterns`` are dropped; all others pass, in order. Nothing is
    dropped when :func:`verbose`."""
    if verbose():
        yield
        return
    with filtered_stderr(0, list(patterns)):
        yield


# ---------------------------------------------------------------------------------------------
# TensorFlow's start-up, for the command line
# ---------------------------------------------------------------------------------------------
# absl's notice, printed with the first line any of TensorFlow's libraries logs before absl's
# logging is set up. It says where those lines go, nothing about the program.
ABSL_NOTICE = (
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"
)
# An absl log line: severity, date, time, thread id, file:line] message.
ABSL_LINE = r"^(?P<severity>[IWEF])\d{4} [\d:.]+\s+\d+ (?P<source>[\w.-]+):\d+\] "
SEVERITIES = "IWEF"  # TF_CPP_MIN_LOG_LEVEL 1 hides I, 2 also W, 3 also E
# TensorFlow's error when it looks for a CUDA device and the machine has no NVIDIA driver.
NO_DRIVER_CUINIT = r"^E\d{4} [\d:.]+\s+\d+ cuda_platform\.cc:\d+\] failed call to cuInit"

# Run by a child Python while TensorFlow is imported: copies its stdin to its stdout line by
# line, dropping absl lines below the level (argv[1]) and lines matching argv[2:]. A separate
# process, so that whatever the import prints before a crash (an abort in a C++ library) still
# reaches the terminal.
_FILTER = r"""
import re, sys
level, drop = int(sys.argv[1]), [re.compile(p.encode()) for p in sys.argv[3:]]
line_re = re.compile(sys.argv[2].encode())
for line in sys.stdin.buffer:
    text = line.rstrip(b"\r\n")
    absl = line_re.match(text)
    if absl and b"IWEF".index(absl.group("severity")) < level:
        continue
    if any(p.search(text) for p in drop):
        continue
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()
"""


def nvidia_driver_present():
    """Whether this machine has an NVIDIA driver: its kernel module reports a version, or its
    user-space library (``libcuda``) loads. Only then can TensorFlow's ``cuInit`` succeed."""
    if os.path.exists("/proc/driver/nvidia/version"):
        return True
    if not sys.platform.startswith("linux"):
        return False  # TensorFlow's CUDA builds are Linux only
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def quiet_tensorflow_level():
    """The C++ log level the command line runs TensorFlow at: the user's ``TF_CPP_MIN_LOG_LEVEL``
    if set, else :data:`QUIET_TF_LOG_LEVEL`."""
    raw = os.environ.get(TF_LOG_LEVEL_VARIABLE, QUIET_TF_LOG_LEVEL)
    try:
        return max(0, min(3, int(raw)))
    except ValueError:
        return int(QUIET_TF_LOG_LEVEL)


def import_tensorflow_quietly():
    """Imports TensorFlow for the command line, showing only the start-up lines a user can use.

    Does nothing when TensorFlow is already imported or the user asked for everything
    (:func:`verbose`). Otherwise:

    - ``TF_CPP_MIN_LOG_LEVEL`` is set to 1 unless the user set it: TensorFlow's C++ INFO lines
      are not shown; its warnings and errors are.
    - While TensorFlow loads, its libraries log a few lines before they read that level (the
      oneDNN and "could not find cuda drivers" INFO lines and absl's notice about them, twice:
      the profiler's library, loaded by ``import tensorflow`` itself, carries its own copy of the
      logging code). No setting reaches them, so stderr passes through a filter during the
      import that drops exactly those: absl lines below the level, and the notice.
    - On a machine without an NVIDIA driver TensorFlow's search for a GPU ends in an error line
      ("failed call to cuInit") that says only that there is no GPU: the search is made during
      the import (``tf.config.list_physical_devices``) and that line dropped. With a driver,
      a failing ``cuInit`` is a real error and is shown.
    """
    if "tensorflow" in sys.modules or verbose():
        return
    os.environ.setdefault(TF_LOG_LEVEL_VARIABLE, QUIET_TF_LOG_LEVEL)
    drop = [ABSL_NOTICE]
    search_devices = not nvidia_driver_present()
    if search_devices:
        drop.append(NO_DRIVER_CUINIT)
    with filtered_stderr(quiet_tensorflow_level(), drop):
        import tensorflow as tf  # the import this function exists for

        if search_devices:
            tf.config.list_physical_devices()


@contextlib.contextmanager
def filtered_stderr(level, drop):
    """Inside, file descriptor 2 goes through a child process that passes every line except absl
    log lines of a severity below ``level`` and lines matching a regular expression in ``drop``.

    Works on the descriptor, not ``sys.stderr``, so it also sees what C++ libraries write.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        child = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _FILTER, str(level), ABSL_LINE, *drop],
            stdin=subprocess.PIPE,
            stdout=saved,
            stderr=saved,
        )
    except OSError:  # no child process to be had: show everything rather than fail
        os.close(saved)
        yield
        return
    try:
        os.dup2(child.stdin.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:  # held open by a process the import started
            child.kill()

"""Shared fixtures. Every test starts from, and leaves, the process's global Keras and random
state as it found them, so no test depends on the order the suite runs in.

pytest imports this file before any test module, so the package is imported here before
TensorFlow: the whole suite runs with the TensorFlow settings the package chooses
(inception_keras.runtime), as its command line and a user who imports it first get them."""

import dataclasses
import os
import pathlib
import subprocess
import sys

import inception_keras  # noqa: F401  before TensorFlow, for its CPU kernels

# isort: split
import pytest

from inception_keras.global_state import restored_global_state


@pytest.fixture(autouse=True)
def restore_global_state():
    """Puts back the global dtype policy and the Python and NumPy random states after each test
    (code under test and tests themselves set them), as a training run does for its caller."""
    with restored_global_state():
        yield


@pytest.fixture(scope="session")
def shapes_data_dir(tmp_path_factory):
    """The built-in shapes set at smoke size, prepared once for the whole session."""
    from inception_keras import shapes

    path = tmp_path_factory.mktemp("tfds")
    shapes.prepare("shapes/smoke", str(path))
    return path


ROOT = pathlib.Path(__file__).resolve().parent.parent

# A finished run of QUICKSTART_COMMAND, with its combined output in train.log: set to reuse one
# (e.g. in an inner loop) instead of training it again in this session.
QUICKSTART_RUN_VARIABLE = "INCEPTION_KERAS_TEST_QUICKSTART_RUN"


def quickstart_command(output_dir, data_dir):
    """The quickstart's training command (``scripts/quickstart.sh``), into the given folders."""
    return [
        sys.executable,
        "-m",
        "inception_keras.cli",
        "train",
        "--preset",
        "quickstart",
        "--output-dir",
        str(output_dir),
        "--data-dir",
        str(data_dir),
    ]


@dataclasses.dataclass(frozen=True)
class QuickstartRun:
    """A model trained exactly as the quickstart trains it, shared by every test that needs a
    model that has really learned (localisation, curves, confusion, quiet logs)."""

    output_dir: pathlib.Path
    data_dir: pathlib.Path
    log: str

    @property
    def checkpoint(self):
        return self.output_dir / "best.keras"


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory):
    """The quickstart's training run (a few minutes on two cores), once per session."""
    reused = os.environ.get(QUICKSTART_RUN_VARIABLE)
    if reused:
        run = pathlib.Path(reused)
        return QuickstartRun(run / "run", run / "tfds", (run / "train.log").read_text())
    base = tmp_path_factory.mktemp("quickstart")
    env = dict(os.environ)
    # The subprocess must import this checkout's package, whatever is installed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        quickstart_command(base / "run", base / "tfds"),
        cwd=base,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    (base / "train.log").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-3000:]
    return QuickstartRun(base / "run", base / "tfds", result.stdout)

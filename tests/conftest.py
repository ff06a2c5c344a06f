"""Shared fixtures. Every test starts from, and leaves, the process's global Keras and random
state as it found them, so no test depends on the order the suite runs in.

pytest imports this file before any test module, so the package is imported here before
TensorFlow: the whole suite runs with the TensorFlow settings the package chooses
(inception_keras.runtime), as its command line and a user who imports it first get them."""

import collections
import dataclasses
import os
import pathlib
import subprocess
import sys
import time

import inception_keras  # noqa: F401  before TensorFlow, for its CPU kernels

# isort: split
import pytest


def _needs_the_quickstart(item):
    return "quickstart_run" in item.fixturenames


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Groups and orders the tests for pytest-xdist's ``--dist loadgroup`` (``scripts/test.sh``
    runs one worker per core and hands each group to one worker, so a module's fixtures are built
    once): a group is a test file's tests, those that use the quickstart's run in a group of their
    own. The groups with the most slow tests go first, so no worker is left with a long one at the
    end, and the quickstart's groups last, so its training (started in the background as the
    session starts) is done when they come. The order changes no test's outcome: every test
    leaves global state as it found it."""

    def group(item):
        name = item.path.relative_to(config.rootpath).as_posix()
        return name + (" on the quickstart's run" if _needs_the_quickstart(item) else "")

    groups = {item: group(item) for item in items}
    slow = collections.Counter(groups[item] for item in items if item.get_closest_marker("slow"))
    if config.pluginmanager.hasplugin("xdist"):  # its mark; pytest alone would warn about it
        for item in items:
            item.add_marker(pytest.mark.xdist_group(groups[item]))
    items.sort(key=lambda item: (_needs_the_quickstart(item), -slow[groups[item]]))


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: pytest without it runs too
def pytest_xdist_node_collection_finished(node, ids):
    """Stops the run before any test when ``--dist loadgroup`` would not group: pytest-xdist
    marks a test's group by appending ``@group`` to its node id, which some pytest versions
    ignore (setup.cfg pins the test extra's pytest below them). Ungrouped, a file's tests are
    spread over every worker and each worker builds the file's module fixtures again."""
    if node.config.getvalue("dist") == "loadgroup" and not all("@" in nodeid for nodeid in ids):
        pytest.exit(
            "pytest-xdist's --dist loadgroup does not group tests under this pytest "
            "(pytest-dev/pytest-xdist#1386): reinstall the test extra (setup.cfg pins pytest)",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


@pytest.fixture(autouse=True)
def restore_global_state():
    """Puts back the global dtype policy and the Python and NumPy random states after each test
    (code under test and tests themselves set them), as a training run does for its caller."""
    # Imported here, not at the top: it loads TensorFlow, which pytest-xdist's controller process
    # (it only hands out tests) need not load, nor print TensorFlow's start-up lines from.
    from inception_keras.global_state import restored_global_state

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

# A folder the main job has run in (QuickstartRun's base, its output in quickstart.log): set to
# reuse it (e.g. in an inner loop) instead of running it again in this session.
QUICKSTART_RUN_VARIABLE = "INCEPTION_KERAS_TEST_QUICKSTART_RUN"


QUICKSTART_SCRIPT = ROOT / "scripts" / "quickstart.sh"
# The script's own set-up, which the test run has done already: it runs in .venv, and the main
# job runs in a folder of its own instead of the checkout.
QUICKSTART_SETUP = ('cd "$(dirname "$0")/.."', "source scripts/_venv.sh")


def quickstart_script():
    """The README's main job: ``scripts/quickstart.sh`` less its set-up lines, for ``bash -c``."""
    lines = QUICKSTART_SCRIPT.read_text().splitlines()
    missing = [line for line in QUICKSTART_SETUP if line not in lines]
    assert not missing, f"scripts/quickstart.sh no longer holds {missing}: see tests/conftest.py"
    return "\n".join(line for line in lines if line not in QUICKSTART_SETUP) + "\n"


@dataclasses.dataclass(frozen=True)
class QuickstartRun:
    """The README's main job, run once per test run as ``scripts/quickstart.sh`` runs it, in the
    folder ``base``: the tests that need a model that has really learned (localisation, curves,
    confusion, quiet logs) share its training run, and those that need an export of every format
    share its export."""

    base: pathlib.Path
    log: str  # every command's output, as a user piping the script to a file reads it

    @property
    def output_dir(self):
        return self.base / "runs" / "quickstart"

    @property
    def data_dir(self):
        return self.base / "runs" / "tfds"

    @property
    def checkpoint(self):
        return self.output_dir / "best.keras"

    @property
    def export(self):
        """The exported version: read it, never change it (copy it first)."""
        return self.base / "saved_models" / "googlenet" / "1"

    @property
    def samples(self):
        return self.base / "runs" / "samples"


LOG, STATUS = "quickstart.log", "returncode"


# Far longer than the main job takes on two busy cores; a hung run fails instead of waiting forever.
QUICKSTART_TIMEOUT_S = 3600


@pytest.fixture(scope="session", autouse=True)
def quickstart_in_background(request, tmp_path_factory):
    """The folder of this test run's main job, started in the background as the session starts
    when a selected test needs it (and no finished run is given to reuse), so it runs beside the
    other tests. Under pytest-xdist the first worker to create the folder, in
    the workers' common base folder, starts it; the others find it there. The worker that started
    it waits for it at the end of its session rather than leave it running."""
    if os.environ.get(QUICKSTART_RUN_VARIABLE) or not any(
        _needs_the_quickstart(item) for item in request.session.items
    ):
        yield None
        return
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    base = shared / "quickstart"
    try:
        base.mkdir()
    except FileExistsError:
        yield base
        return
    env = dict(os.environ)
    # The subprocess must import this checkout's package, whatever is installed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    logged = [sys.executable, str(ROOT / "tests" / "_logged_run.py")]
    # The main job's commands from .venv (this Python's folder) before any other installation.
    env["PATH"] = os.pathsep.join((os.path.dirname(sys.executable), env.get("PATH", "")))
    command = logged + [str(base / LOG), str(base / STATUS)]
    process = subprocess.Popen(
        command + ["bash", "-c", quickstart_script()],
        cwd=base,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    yield base
    process.wait(timeout=QUICKSTART_TIMEOUT_S)


@pytest.fixture(scope="session")
def quickstart_run(quickstart_in_background):
    """The README's main job (about ten minutes on two cores), once per test run."""
    reused = os.environ.get(QUICKSTART_RUN_VARIABLE)
    if reused:
        # Absolute, as the export's manifest names the checkpoint.
        base = pathlib.Path(reused).resolve()
        return QuickstartRun(base, (base / LOG).read_text())
    base = quickstart_in_background
    status = base / STATUS
    deadline = time.monotonic() + QUICKSTART_TIMEOUT_S
    while not status.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"the main job in {base} ran over {QUICKSTART_TIMEOUT_S} s")
        time.sleep(1)
    log = (base / LOG).read_text()
    assert status.read_text() == "0", log[-3000:]
    return QuickstartRun(base, log)

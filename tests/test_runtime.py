"""The package's one process-wide TensorFlow setting: oneDNN's CPU kernels, asked for before
TensorFlow is imported and only where the user has not chosen."""

import os
import platform
import subprocess
import sys

import pytest

from inception_keras import runtime

X86_64 = runtime.is_x86_64()

# What a fresh Python reports after the given imports: the variable, and TensorFlow's own
# start-up message (its answer, independent of this package's query) beside the query.
PROBE = (
    "import os, sys\n"
    "for name in sys.argv[1:]: __import__(name)\n"
    "from inception_keras import runtime\n"
    "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), runtime.onednn_enabled())\n"
)


def _fresh_python(imports, **environment):
    env = {k: v for k, v in os.environ.items() if k != runtime.ONEDNN_VARIABLE}
    env.update(environment)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *imports], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()[-2:], "oneDNN custom operations are on" in result.stderr


@pytest.fixture
def tensorflow_not_imported(monkeypatch):
    """This process as if TensorFlow had not been imported yet, restored afterwards."""
    monkeypatch.delenv(runtime.ONEDNN_VARIABLE, raising=False)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)


def test_asks_for_onednn_before_tensorflow_on_x86_64(tensorflow_not_imported, monkeypatch):
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert runtime.prefer_onednn() is True
    assert os.environ[runtime.ONEDNN_VARIABLE] == "1"


@pytest.mark.parametrize("choice", ["0", "1"])
def test_the_users_choice_stands(tensorflow_not_imported, monkeypatch, choice):
    monkeypatch.setenv(runtime.ONEDNN_VARIABLE, choice)
    assert runtime.prefer_onednn() is False
    assert os.environ[runtime.ONEDNN_VARIABLE] == choice


def test_nothing_is_set_once_tensorflow_is_imported(monkeypatch):
    import tensorflow  # noqa: F401

    monkeypatch.delenv(runtime.ONEDNN_VARIABLE, raising=False)
    assert runtime.prefer_onednn() is False
    assert runtime.ONEDNN_VARIABLE not in os.environ


def test_other_processors_keep_tensorflows_default(tensorflow_not_imported, monkeypatch):
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert runtime.prefer_onednn() is False
    assert runtime.ONEDNN_VARIABLE not in os.environ


@pytest.mark.slow
@pytest.mark.skipif(not X86_64, reason="the package asks for oneDNN on x86-64 only")
def test_tensorflow_runs_onednn_when_the_package_is_imported_first():
    # Imported first: TensorFlow says its oneDNN kernels are on.
    (variable, enabled), announced = _fresh_python(["inception_keras", "tensorflow"])
    assert (variable, enabled, announced) == ("1", "True", True)
    # The user's 0 wins.
    (variable, enabled), announced = _fresh_python(["inception_keras"], TF_ENABLE_ONEDNN_OPTS="0")
    assert (variable, enabled, announced) == ("0", "False", False)
    # TensorFlow imported first: the package changes nothing, and TensorFlow's own default holds.
    (variable, _), _ = _fresh_python(["tensorflow", "inception_keras"])
    assert variable == "None"


CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9B14
flags\t\t: fpu sse2 avx avx2 fma {extra}

processor\t: 1
model name\t: AMD EPYC 9B14
flags\t\t: fpu sse2 avx avx2 fma {extra}
"""


@pytest.mark.parametrize(
    "extra, machine, expected",
    [
        ("", "x86_64", True),  # AVX2 only
        ("avx512f avx512_bf16", "x86_64", False),
        ("", "aarch64", False),
    ],
)
def test_x86_without_avx512_reads_the_cpu_flags(extra, machine, expected, tmp_path, monkeypatch):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO.format(extra=extra))
    model, flags = runtime.cpu_info(path)
    assert model == "AMD EPYC 9B14"
    assert {"avx2", "fma"} <= flags and ("avx512f" in flags) == bool(extra)
    monkeypatch.setattr(runtime, "cpu_info", lambda: (model, flags))
    monkeypatch.setattr(runtime.platform, "machine", lambda: machine)
    assert runtime.x86_without_avx512.__wrapped__() is expected


def test_cpu_info_without_the_file_says_nothing(tmp_path):
    assert runtime.cpu_info(tmp_path / "missing")[1] == set()
    assert runtime.x86_without_avx512.__wrapped__() in (True, False)

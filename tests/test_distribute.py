"""Distributed training: strategies, the Keras multi-worker shim, real multi-device ``fit`` runs.

The ``fit`` runs happen in subprocesses (tests/_worker.py): logical devices and multi-worker
collectives must be configured before TensorFlow's runtime starts, which in the pytest process has
long happened, and each multi-worker worker is a process of its own anyway. Every subprocess has a
timeout, so a worker stuck in a collective fails the test instead of hanging CI.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.backend.tensorflow import trainer

from inception_keras import distribute

# Every test here trains, exports or starts processes: the slow tier.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "_worker.py"
# Seconds for one whole subprocess run (TF start-up, model build, two steps); ~10x the usual.
RUN_TIMEOUT_S = 300


# --- helpers -------------------------------------------------------------------------------------


def free_ports(count):
    """``count`` distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture(scope="module")
def data_dir(shapes_data_dir):
    return str(shapes_data_dir)


def run_workers(tmp_path, worker_args, tf_configs=None):
    """Runs one tests/_worker.py process per entry of ``worker_args``, all at once.

    Returns one ``(returncode, log text, result dict or None)`` per process. Output goes to files,
    not pipes: a worker blocked on a full pipe would stall its peers' collectives.
    """
    base_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    base_env.pop("TF_CONFIG", None)
    # The subprocesses must import this checkout's package, whatever is installed.
    base_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
    )
    procs, dirs, logs = [], [], []
    try:
        for i, args in enumerate(worker_args):
            out = tmp_path / f"worker{i}"
            out.mkdir()
            env = dict(base_env)
            if tf_configs:
                env["TF_CONFIG"] = json.dumps(tf_configs[i])
            log = open(out / "log.txt", "w")
            logs.append(log)
            dirs.append(out)
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(WORKER), "--out", str(out), *args],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + RUN_TIMEOUT_S
        for proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pytest.fail(f"workers still running after {RUN_TIMEOUT_S}s (hung?):\n" + tails(dirs))
    finally:
        # Whatever went wrong, leave no worker behind (only the processes started here).
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
    results = []
    for proc, out in zip(procs, dirs):
        result_file = out / "result.json"
        result = json.loads(result_file.read_text()) if result_file.exists() else None
        results.append((proc.returncode, (out / "log.txt").read_text(), result))
    return results


def tails(dirs, chars=3000):
    return "\n".join(f"--- {d.name}:\n{(d / 'log.txt').read_text()[-chars:]}" for d in dirs)


def two_worker_tf_configs():
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    return [{"cluster": cluster, "task": {"type": "worker", "index": i}} for i in range(2)]


def assert_trained(result):
    """Finite losses, and every trainable variable changed by the steps."""
    assert result["finite"], result["history"]
    unchanged = [p for p in result["trainable"] if result["before"][p] == result["after"][p]]
    assert not unchanged, f"training left these variables unchanged: {unchanged}"


@pytest.fixture
def restore_trainer(monkeypatch):
    """Lets a test install the shim in this process; the original functions come back after it."""
    monkeypatch.setattr(
        trainer.TensorFlowTrainer,
        "_maybe_symbolic_build",
        trainer.TensorFlowTrainer._maybe_symbolic_build,
    )
    monkeypatch.setattr(trainer, "reduce_per_replica", trainer.reduce_per_replica)


# --- fit on several devices and several workers ----------------------------------------------


def test_mirrored_fit_on_two_logical_cpus(tmp_path, data_dir):
    # bn variant: BatchNorm is the layer with per-replica state, the interesting case here.
    [(code, log, result)] = run_workers(
        tmp_path,
        [
            [
                "--strategy",
                "mirrored",
                "--logical-cpus",
                "2",
                "--variant",
                "bn",
                "--data-dir",
                data_dir,
            ]
        ],
    )
    assert code == 0, log[-3000:]
    assert result["replicas"] == 2
    assert not result["shim_installed"], "MirroredStrategy must work without the Keras shim"
    assert_trained(result)


def test_mirrored_fit_updates_like_one_replica_with_the_same_global_batch(tmp_path, data_dir):
    # The oracle is a one-replica run of the same steps: two replicas of 4 images must update the
    # weights as one replica of 8 does (gradients averaged across replicas, not summed, and every
    # image of the global batch used once). The paper variant has no per-replica BatchNorm
    # statistics, and dropout is off so that no random masks differ between the runs.
    common = ["--strategy", "mirrored", "--variant", "paper", "--no-dropout", "--save-weights"]
    common += ["--data-dir", data_dir]
    (code2, log2, two), (code1, log1, one) = run_workers(
        tmp_path,
        [
            [*common, "--logical-cpus", "2", "--per-replica-batch", "4"],
            [*common, "--logical-cpus", "1", "--per-replica-batch", "8"],
        ],
    )
    assert code2 == 0, log2[-3000:]
    assert code1 == 0, log1[-3000:]
    assert (two["replicas"], one["replicas"]) == (2, 1)
    assert two["before"] == one["before"], "the runs started from different weights"
    weights = [np.load(tmp_path / f"worker{i}" / "weights.npz") for i in (0, 1)]
    for i, path in enumerate(one["trainable"]):
        update_two, update_one = (w[f"after_{i}"] - w[f"before_{i}"] for w in weights)
        scale = np.linalg.norm(update_one)
        assert scale > 0, f"{path} did not move"
        # Float sums in another order stay far below 1e-3 of the update; a factor of two (summed
        # gradients) or a missing half batch would be of the update's own size.
        assert np.linalg.norm(update_two - update_one) < 1e-3 * scale, path


def test_multi_worker_fit_gives_identical_weights(tmp_path, data_dir):
    # paper variant: every variable is a trained weight kept in sync by the all-reduce. (With the
    # bn variant each worker keeps BatchNorm moving statistics of its own data shard, as Keras 3
    # creates them unsynchronised; trainable weights still agree.)
    results = run_workers(
        tmp_path,
        [["--strategy", "multi-worker", "--variant", "paper", "--data-dir", data_dir]] * 2,
        two_worker_tf_configs(),
    )
    for code, log, _ in results:
        assert code == 0, (
            f"worker failed (Keras {keras.__version__}; shim versions "
            f"{distribute.KERAS_SHIM_VERSIONS}):\n{log[-3000:]}"
        )
    (_, _, first), (_, _, second) = results
    assert first["replicas"] == second["replicas"] == 2
    assert first["shim_installed"] and second["shim_installed"]
    assert first["before"] == second["before"], "workers started from different weights"
    differing = [p for p in first["after"] if first["after"][p] != second["after"][p]]
    assert not differing, f"workers ended with different values of {differing}"
    # Logged losses are means over both workers' replicas, so they agree too.
    assert first["history"] == second["history"]
    assert_trained(first)
    # The chief (worker 0, no chief in the cluster) writes the run's files; worker 1 beside them.
    assert first["output_dir"].endswith("run")
    assert second["output_dir"].endswith(os.path.join("run", "workers", "worker_1"))


@pytest.mark.skipif(
    not distribute.keras_needs_multi_worker_patch(),
    reason=f"Keras {keras.__version__} is outside the shim's versions; nothing to show",
)
def test_multi_worker_fit_fails_without_the_shim(tmp_path, data_dir):
    results = run_workers(
        tmp_path,
        [["--strategy", "multi-worker", "--variant", "paper", "--no-shim", "--data-dir", data_dir]]
        * 2,
        two_worker_tf_configs(),
    )
    for code, log, result in results:
        assert code != 0 and result is None, "fit succeeded without the shim: move the bound?"
        # Bug (a): the symbolic build all-reduces the distributed data batch.
        assert "PerReplica" in log, log[-3000:]


# --- the shim, in this process ------------------------------------------------------------------


@pytest.mark.parametrize(
    "version, affected",
    [
        ("3.7.0", False),
        ("3.8.0", True),
        ("3.15.1", True),
        ("3.16.0.dev2026", False),
        ("4.0.0", False),
        ("nonsense", False),
    ],
)
def test_shim_version_bound(version, affected):
    assert distribute.keras_needs_multi_worker_patch(version) is affected


def test_shim_patches_the_two_functions_once(restore_trainer):
    if not distribute.keras_needs_multi_worker_patch():
        pytest.skip(f"Keras {keras.__version__} is outside the shim's versions")
    original_build = trainer.TensorFlowTrainer._maybe_symbolic_build
    original_reduce = trainer.reduce_per_replica

    assert distribute.patch_keras_for_multi_worker() is True
    build, reduce = trainer.TensorFlowTrainer._maybe_symbolic_build, trainer.reduce_per_replica
    assert build is not original_build and build.__wrapped__ is original_build
    assert reduce is not original_reduce and reduce.__wrapped__ is original_reduce

    assert distribute.patch_keras_for_multi_worker() is True  # idempotent: no double wrapping
    assert trainer.TensorFlowTrainer._maybe_symbolic_build is build
    assert trainer.reduce_per_replica is reduce

    # Outside multi-worker mode the patched function is Keras' own.
    logs = {"loss": tf.constant(2.0)}
    assert reduce(logs, tf.distribute.get_strategy(), "auto") == original_reduce(
        logs, tf.distribute.get_strategy(), "auto"
    )


def test_shim_leaves_other_keras_versions_alone(restore_trainer, monkeypatch):
    original_build = trainer.TensorFlowTrainer._maybe_symbolic_build
    original_reduce = trainer.reduce_per_replica
    monkeypatch.setattr(keras, "__version__", "3.99.0")
    with pytest.warns(UserWarning, match="not patching"):
        assert distribute.patch_keras_for_multi_worker() is False
    assert trainer.TensorFlowTrainer._maybe_symbolic_build is original_build
    assert trainer.reduce_per_replica is original_reduce


# --- make_strategy and helpers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("horovod", {}, "`name` must be one of"),
        ("Mirrored", {}, "`name` must be one of"),
        ("auto", {"devices": ["/cpu:0"]}, "`devices` applies only to name='mirrored'"),
        ("multi-worker", {"devices": ["/cpu:0"]}, "`devices` applies only"),
        ("mirrored", {"devices": []}, "`devices` must be a non-empty list"),
        ("mirrored", {"devices": "/cpu:0"}, "`devices` must be a non-empty list"),
    ],
)
def test_make_strategy_argument_errors(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        distribute.make_strategy(name, **kwargs)


@pytest.mark.parametrize(
    "tf_config, message",
    [
        (None, "TF_CONFIG environment variable, which is not set"),
        ("", "TF_CONFIG environment variable, which is not set"),
        ("{cluster: 1}", "TF_CONFIG is not valid JSON"),
        ('["worker"]', 'TF_CONFIG must be an object with "cluster" and "task"'),
        ('{"cluster": {"worker": ["127.0.0.1:1"]}}', "TF_CONFIG must be an object"),
        (
            '{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
            'TF_CONFIG\'s "cluster" must list "worker"',
        ),
        (
            '{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}',
            "host:port",
        ),
        (
            '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
            'TF_CONFIG\'s "task" must name a job',
        ),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
            'TF_CONFIG\'s "task"',
        ),
    ],
)
def test_make_strategy_multi_worker_needs_a_valid_tf_config(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=message):
        distribute.make_strategy("multi-worker")


def test_default_and_auto_strategies_without_several_gpus():
    if len(tf.config.list_physical_devices("GPU")) > 1:
        pytest.skip("several GPUs: 'auto' is MirroredStrategy here")
    for name in ("default", "auto"):
        strategy = distribute.make_strategy(name)
        assert strategy is tf.distribute.get_strategy()
        assert distribute.global_batch_size(32, strategy) == 32


def test_with_auto_shard_policy():
    policy = tf.data.experimental.AutoShardPolicy
    dataset = tf.data.Dataset.range(4)
    for reads_files, expected in ((False, policy.DATA), (True, policy.FILE)):
        sharded = distribute.with_auto_shard(dataset, reads_files=reads_files)
        assert sharded.options().experimental_distribute.auto_shard_policy == expected


def test_configure_logical_cpus_errors():
    with pytest.raises(ValueError, match="positive integer"):
        distribute.configure_logical_cpus(0)
    tf.constant(0.0)  # the runtime is initialised from here on in this process
    current = tf.config.get_logical_device_configuration(tf.config.list_physical_devices("CPU")[0])
    count = 3 if current is None or len(current) != 3 else 4
    with pytest.raises(RuntimeError, match="before TensorFlow runs its first operation"):
        distribute.configure_logical_cpus(count)

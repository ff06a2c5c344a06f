"""Distributed training with ``tf.distribute``: choosing a strategy; a Keras 3 multi-worker shim.

Typical use::

    strategy = make_strategy("auto")              # or "mirrored", "multi-worker", "default"
    with strategy.scope():
        model = GoogLeNet(input_shape=(64, 64, 3), classes=10, include_aux=True)
        model.compile(...)
    batch = global_batch_size(32, strategy)       # 32 images per replica
    model.fit(with_auto_shard(dataset.batch(batch)), ...)

Batch size is global. ``model.fit`` under a strategy takes batches of the *global* batch size and
splits each one across all replicas of all workers, so a data set batched with
``per_replica * strategy.num_replicas_in_sync`` (:func:`global_batch_size`) keeps the per-replica
batch -- and therefore the learning-rate recipe -- the same whatever the number of devices. Each
replica's loss is scaled by ``1 / num_replicas_in_sync`` and the gradients are summed across
replicas, so one step equals one step on the whole global batch.

Data is sharded across workers (``MultiWorkerMirroredStrategy`` only; one worker's replicas split
its batches). tf.data's auto-shard policy decides how (:func:`with_auto_shard`):

* ``FILE`` when the data set reads files (TFRecord shards, image files): each worker reads a
  disjoint subset of the files, so no worker reads data it throws away. It needs at least as many
  files as workers, otherwise some worker gets no data and training hangs or fails.
* ``DATA`` for generated and in-memory data sets (``from_tensor_slices``, synthetic images): there
  are no files to split, so every worker produces every element and keeps only its share. This
  costs the full input pipeline on every worker, which is cheap for such data sets, and is always
  correct. The default policy ``AUTO`` tries FILE and falls back to DATA with a warning; we set the
  policy explicitly so that neither the choice nor the warning depends on how the data set was
  built.

Keras 3 and MultiWorkerMirroredStrategy. Keras 3's TensorFlow trainer fails under
``MultiWorkerMirroredStrategy`` with more than one worker (keras-team/keras#20585,
tensorflow/tensorflow#72388). :func:`patch_keras_for_multi_worker` fixes the two faulty places;
``make_strategy("multi-worker")`` applies it. ``MirroredStrategy`` (one worker, several devices)
does not need it.
"""

import functools
import json
import os
import re
import warnings

import keras
import tensorflow as tf

from inception_keras.errors import UsageError
from inception_keras.run_config import STRATEGIES

TF_CONFIG = "TF_CONFIG"

# Keras versions whose TensorFlow trainer has both multi-worker bugs the shim fixes, as
# [first, last] (major, minor) inclusive. The lower end is this package's own Keras floor (3.8,
# setup.cfg); the upstream reports (keras-team/keras#20585, tensorflow/tensorflow#72388) date the
# failure back to TF 2.16, the first TF with Keras 3. The upper end is the newest Keras the shim
# was checked against (3.15.1, TF 2.21: both bugs reproduced, the upstream issue still open). A
# newer Keras is deliberately *not* patched blind: the shim replaces
# private trainer functions whose shape may change, so a newer version gets a warning instead, and
# tests/test_distribute.py's two-worker test says whether the bound must move.
KERAS_SHIM_VERSIONS = ((3, 8), (3, 15))

# Marks a function installed by the shim, so applying it twice is a no-op.
_SHIM_MARK = "_inception_keras_multi_worker_shim"


def make_strategy(name="auto", *, devices=None, patch_keras=True):
    """Returns a ``tf.distribute.Strategy`` for ``model.fit``.

    Args:
        name: one of ``STRATEGIES``:

            * ``"auto"``: ``MirroredStrategy`` over the local GPUs when more than one is visible,
              else the default strategy (one device, no replication).
            * ``"default"``: the default strategy, whatever devices exist.
            * ``"mirrored"``: ``MirroredStrategy``, synchronous data parallelism on one machine,
              over all local GPUs (the CPU when there is none) or over ``devices``.
            * ``"multi-worker"``: ``MultiWorkerMirroredStrategy``, synchronous data parallelism
              over several machines (or processes) described by the ``TF_CONFIG`` environment
              variable. Like every multi-worker strategy it must be created at program start,
              before TensorFlow runs any operation.

        devices: with ``"mirrored"`` only, the devices to replicate over, e.g.
            ``["/cpu:0", "/cpu:1"]`` (see :func:`configure_logical_cpus`).
        patch_keras: with ``"multi-worker"`` only, apply :func:`patch_keras_for_multi_worker`
            (needed for ``model.fit`` with more than one worker on the affected Keras versions).

    Raises:
        ValueError: an unknown ``name``, ``devices`` with a strategy other than ``"mirrored"``, an
            empty ``devices``, or a missing or invalid ``TF_CONFIG`` for ``"multi-worker"``.
    """
    if name not in STRATEGIES:
        raise UsageError(f"`name` must be one of {STRATEGIES}; got {name!r}.")
    if devices is not None:
        if name != "mirrored":
            raise UsageError(f"`devices` applies only to name='mirrored'; got name={name!r}.")
        if isinstance(devices, str) or not devices:
            raise UsageError(
                f"`devices` must be a non-empty list of device names such as ['/cpu:0', '/cpu:1']; "
                f"got {devices!r}."
            )

    if name == "auto":
        if len(tf.config.list_physical_devices("GPU")) > 1:
            return tf.distribute.MirroredStrategy()
        return tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=list(devices) if devices else None)

    _check_tf_config(os.environ.get(TF_CONFIG))
    if patch_keras:
        patch_keras_for_multi_worker()
    return tf.distribute.MultiWorkerMirroredStrategy()


def _check_tf_config(raw):
    """Validates the ``TF_CONFIG`` JSON that ``MultiWorkerMirroredStrategy`` reads.

    TensorFlow itself silently falls back to a local, single-worker setup when ``TF_CONFIG`` is
    missing, and fails deep inside gRPC when it is malformed; a multi-worker run wants to know now.
    """
    if not raw:
        raise UsageError(
            f"name='multi-worker' needs the {TF_CONFIG} environment variable, which is not set. "
            f'Set it on every worker, e.g. {TF_CONFIG}=\'{{"cluster": {{"worker": '
            '["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}\'.'
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise UsageError(f"{TF_CONFIG} is not valid JSON ({error}): {raw!r}.") from None

    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise UsageError(f'{TF_CONFIG} must be an object with "cluster" and "task"; got {raw!r}.')
    jobs = {job: hosts for job, hosts in cluster.items() if job in ("chief", "worker")}
    if not jobs or not all(
        isinstance(hosts, list) and hosts and all(isinstance(h, str) and ":" in h for h in hosts)
        for hosts in jobs.values()
    ):
        raise UsageError(
            f'{TF_CONFIG}\'s "cluster" must list "worker" (and optionally "chief") addresses as '
            f'non-empty lists of "host:port" strings; got {cluster!r}.'
        )
    task_type, index = task.get("type"), task.get("index")
    if task_type not in jobs or not isinstance(index, int) or not 0 <= index < len(jobs[task_type]):
        raise UsageError(
            f'{TF_CONFIG}\'s "task" must name a job of the cluster ({sorted(jobs)}) and an index '
            f"into its address list; got {task!r}."
        )


def configure_logical_cpus(count):
    """Splits the CPU into ``count`` logical devices, ``/cpu:0`` ... ``/cpu:{count-1}``.

    Lets ``MirroredStrategy`` replicate over several devices on a machine without GPUs, e.g. to test
    distributed training on CI. Must run before TensorFlow initialises its runtime (before the
    first operation); calling it again with the same ``count`` is a no-op.

    Returns:
        The logical CPU device names, for ``make_strategy("mirrored", devices=...)``.

    Raises:
        ValueError: ``count`` is not a positive integer.
        RuntimeError: the runtime is already initialised with a different CPU configuration.
    """
    if not isinstance(count, int) or count < 1:
        raise UsageError(f"`count` must be a positive integer; got {count!r}.")
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is None or len(current) != count:
        try:
            tf.config.set_logical_device_configuration(cpu, wanted)
        except RuntimeError as error:
            raise RuntimeError(
                f"configure_logical_cpus({count}) must be called before TensorFlow runs its first "
                f"operation; the runtime is already initialised ({error})."
            ) from None
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def is_chief(strategy):
    """Whether this process writes the run's files: the chief, or worker 0 when the cluster has
    no chief (TensorFlow's convention), or the only process of a single-machine strategy."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type or resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return not has_chief and resolver.task_type == "worker" and resolver.task_id == 0


def global_batch_size(per_replica_batch_size, strategy):
    """The batch size to give ``model.fit`` so each replica sees ``per_replica_batch_size``."""
    return per_replica_batch_size * strategy.num_replicas_in_sync


def with_auto_shard(dataset, *, reads_files=False):
    """Returns ``dataset`` with the auto-shard policy set for multi-worker training.

    ``reads_files=True`` (a data set built from TFRecord or image files, with at least as many files
    as workers) shards by FILE; otherwise by DATA. See the module docstring for why.
    """
    policy = tf.data.experimental.AutoShardPolicy
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy.FILE if reads_files else policy.DATA
    return dataset.with_options(options)


# --- The Keras 3 multi-worker shim -------------------------------------------------------------


def keras_needs_multi_worker_patch(version=None):
    """Whether Keras ``version`` (default: the installed one) is in ``KERAS_SHIM_VERSIONS``."""
    version = keras.__version__ if version is None else version
    match = re.match(r"(\d+)\.(\d+)", version)
    if not match:
        return False
    first, last = KERAS_SHIM_VERSIONS
    return first <= (int(match[1]), int(match[2])) <= last


def patch_keras_for_multi_worker():
    """Makes ``model.fit`` work under ``MultiWorkerMirroredStrategy`` on affected Keras versions.

    Keras 3's TensorFlow trainer (``keras/src/backend/tensorflow/trainer.py``) goes wrong in two
    places when the strategy spans several workers (keras-team/keras#20585):

    (a) ``TensorFlowTrainer._maybe_symbolic_build`` builds the model from the first data batch and,
        to turn the distributed batch into a plain one, calls
        ``strategy.reduce("MEAN", batch, axis=None)``. Across workers that is a collective
        all-reduce of a whole *data* batch -- a tuple of images and label dicts, not a per-replica
        gradient or metric -- and it fails ("Attempt to convert a value (PerReplica...) to a
        Tensor"); averaged labels would be meaningless anyway. The build only needs shapes and
        dtypes, so the shim builds from this worker's first local replica's batch instead: no
        communication at all.
    (b) ``reduce_per_replica`` reduces the per-replica logs (loss and metric values, scalars)
        with ``strategy.reduce("MEAN", v, axis=0)`` in multi-worker mode, i.e. it also averages
        along the value's own first axis, which a scalar does not have ("Invalid reduction
        dimension 0 for input with 0 dimensions"). The shim reduces with ``axis=None``: the
        element-wise mean over all replicas of all workers, which is what the single-worker
        branch of the same function computes.

    Nothing else changes: other strategies, and other reductions (``predict``'s "concat", "sum"),
    take Keras' own code path. Idempotent: a second call changes nothing.

    Returns:
        True when the shim is (now) installed; False when this Keras version is outside
        ``KERAS_SHIM_VERSIONS`` and was left alone (with a warning).
    """
    if not keras_needs_multi_worker_patch():
        warnings.warn(
            f"Keras {keras.__version__} is outside the versions the multi-worker shim was checked "
            f"against ({KERAS_SHIM_VERSIONS}); not patching. If model.fit fails under "
            "MultiWorkerMirroredStrategy (keras-team/keras#20585), check the Keras trainer and "
            "move inception_keras.distribute.KERAS_SHIM_VERSIONS.",
            stacklevel=2,
        )
        return False

    # Deferred: Keras' private trainer module is touched only when the shim is installed.
    from keras.src.backend.tensorflow import trainer

    build = trainer.TensorFlowTrainer._maybe_symbolic_build
    if not getattr(build, _SHIM_MARK, False):
        trainer.TensorFlowTrainer._maybe_symbolic_build = _build_from_local_batch(build, trainer)
    if not getattr(trainer.reduce_per_replica, _SHIM_MARK, False):
        # The train/test step functions look reduce_per_replica up in the module at trace time.
        trainer.reduce_per_replica = _reduce_scalars_across_workers(
            trainer.reduce_per_replica, trainer
        )
    return True


def _build_from_local_batch(original, trainer):
    """Fix (a): under multi-worker, build from a local replica's batch, not an all-reduce."""

    @functools.wraps(original)
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if (
            iterator is None
            or strategy is None
            or not trainer._collective_all_reduce_multi_worker(strategy)
        ):
            return original(self, iterator=iterator, data_batch=data_batch)
        # Same batch the original takes (the epoch iterator yields (begin, end, data iterator)).
        for _, _, data_iterator in iterator:
            data_batch = keras.tree.map_structure(
                lambda v: (
                    strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues)
                    else v
                ),
                next(data_iterator),
            )
            break
        return original(self, data_batch=data_batch)

    setattr(_maybe_symbolic_build, _SHIM_MARK, True)
    return _maybe_symbolic_build


def _reduce_scalars_across_workers(original, trainer):
    """Fix (b): under multi-worker, average logs element-wise over replicas (``axis=None``)."""

    @functools.wraps(original)
    def reduce_per_replica(values, strategy, reduction):
        # "auto" means "mean" for every strategy but TPUStrategy, which is never multi-worker here.
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return keras.tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    setattr(reduce_per_replica, _SHIM_MARK, True)
    return reduce_per_replica

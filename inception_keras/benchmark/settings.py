"""The runtime settings worth trying, each measured against the default of its group: ONNX
Runtime session options, TFLite threads and XNNPACK, TF threads, TF's CPU kernels and
``steps_per_execution`` for training (the ``settings`` section of the benchmark)."""

import os

from inception_keras.benchmark.measure import inference_timings, train_throughput_in_subprocess
from inception_keras.runners import OnnxRunner, TFLiteRunner
from inception_keras.runtime import ONEDNN_VARIABLE


def setting_variants():
    """``[(artefact label, setting, runner factory(path))]``: the default first per artefact."""
    import onnxruntime  # deferred: a heavy runtime, needed only by this sweep

    cores = os.cpu_count()
    level = onnxruntime.GraphOptimizationLevel
    onnx = [
        ("default (all graph optimisations, threads = cores)", {}),
        (
            "graph optimisation extended (no NCHWc layout)",
            dict(graph_optimization_level=level.ORT_ENABLE_EXTENDED),
        ),
        ("graph optimisation basic", dict(graph_optimization_level=level.ORT_ENABLE_BASIC)),
        ("intra-op threads 1", dict(intra_op_num_threads=1)),
        ("no spin-waiting", {"session.intra_op.allow_spinning": "0"}),
        (
            f"parallel execution, inter-op threads {cores}",
            dict(execution_mode=onnxruntime.ExecutionMode.ORT_PARALLEL, inter_op_num_threads=cores),
        ),
    ]
    variants = [
        ("ONNX", name, lambda path, o=options: OnnxRunner(path, session_options=o))
        for name, options in onnx
    ]
    for label in ("TFLite float32", "TFLite int8"):
        variants += [
            (
                label,
                f"default (XNNPACK, threads = cores = {cores})",
                lambda path: TFLiteRunner(path, num_threads=cores),
            ),
            (
                label,
                "XNNPACK, threads 1 (LiteRT's own default)",
                lambda path: TFLiteRunner(path, num_threads=1),
            ),
            (
                label,
                "builtin kernels, no XNNPACK",
                lambda path: TFLiteRunner(path, num_threads=cores, xnnpack=False),
            ),
        ]
    return variants


def settings_rows(config, paths, image, batch, log=print):
    """The settings sweep: inference variants, then float32 training variants; each row with
    its rate relative to the first (default) row of its group."""
    rows = []
    for label, setting, factory in setting_variants():
        median, _, rate = inference_timings(
            factory(paths[label]),
            image,
            batch,
            config.latency_repeats,
            config.repeats,
            config.warmup,
        )
        rows.append(dict(group=label, setting=setting, latency_ms=median, images_per_sec=rate))
        log(f"  settings {label}, {setting}: {median:.2f} ms batch-1, {rate:.1f} img/s")
    # Each in a fresh process (see train_throughput_in_subprocess), the default included.
    train = [
        ("default (TF threads = cores, steps_per_execution 1)", {}, 1),
        ("steps_per_execution 4", {}, 4),
        ("TF inter-op threads 1", {"TF_NUM_INTEROP_THREADS": "1"}, 1),
        ("TF intra-op threads 1", {"TF_NUM_INTRAOP_THREADS": "1"}, 1),
    ]
    # The other choice of TF's kernels: the subprocesses import this package first, so unless the
    # variable says 0 they run oneDNN's (runtime.prefer_onednn).
    if os.environ.get(ONEDNN_VARIABLE) == "0":
        train.append(("TF oneDNN kernels on", {ONEDNN_VARIABLE: "1"}, 1))
    else:
        train.append(("TF oneDNN kernels off", {ONEDNN_VARIABLE: "0"}, 1))
    for setting, environment, steps_per_execution in train:
        rate = train_throughput_in_subprocess(config, environment, steps_per_execution)
        rows.append(
            dict(group="train float32", setting=setting, latency_ms=None, images_per_sec=rate)
        )
        log(f"  settings train float32, {setting}: {rate:.1f} img/s")
    defaults = {}
    for row in rows:
        default = defaults.setdefault(row["group"], row["images_per_sec"])
        row["relative"] = row["images_per_sec"] / default
    return rows

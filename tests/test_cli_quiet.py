"""A command line that answers at once and says only what matters.

``--help`` and ``--version`` import no TensorFlow (read from the import-time log of a fresh
interpreter); commands show none of TensorFlow's start-up lines unless asked (``--verbose``), while
real warnings and errors still reach the user; the quickstart's training log carries none of the
noise it used to."""

import contextlib
import logging
import os
import pathlib
import re
import subprocess
import sys
import warnings
from importlib import metadata

import pytest

import inception_keras as ik
from inception_keras import logs, shapes

ROOT = pathlib.Path(__file__).resolve().parents[1]

COMMANDS = [
    "summary",
    "train",
    "evaluate",
    "plot",
    "export",
    "convert",
    "verify",
    "predict",
    "samples",
    "features",
    "explain",
    "benchmark",
]
# Top-level packages --help must not import: TensorFlow and everything built on it.
HEAVY = {
    "tensorflow",
    "keras",
    "tensorflow_datasets",
    "tf2onnx",
    "onnx",
    "onnxruntime",
    "ai_edge_litert",
    "tensorflow_serving",
    "numpy",
    "matplotlib",
}
# TensorFlow's start-up lines, as they appear on this machine and others.
STARTUP = [
    r"absl::InitializeLog",
    r"port\.cc:\d+\]",
    r"oneDNN custom operations",
    r"cudart_stub\.cc",
    r"cpu_feature_guard\.cc",
    r"cuInit",
]


def fresh_python(*args, env=None):
    """``python *args`` in a fresh interpreter that imports this checkout's package."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TF_CPP_MIN_LOG_LEVEL", logs.VERBOSE_VARIABLE)
    }
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), environment.get("PYTHONPATH")) if p
    )
    environment.update(env or {})
    return subprocess.run(  # cwd: `-m` and `-c` put it first on sys.path
        [sys.executable, *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


def imported_modules(importtime_log):
    """Top-level package names in ``python -X importtime``'s log."""
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+([\w.]+)", importtime_log, re.M)
    return {name.split(".")[0] for name in names}


# Each of these runs a fresh interpreter but imports no TensorFlow: ~0.3 s, the fast tier.
@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)], ids=["main", *COMMANDS])
def test_help_imports_no_tensorflow(command):
    result = fresh_python("-X", "importtime", "-m", "inception_keras.cli", *command, "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"usage: inception-keras {' '.join(command)}".rstrip())
    modules = imported_modules(result.stderr)
    assert "inception_keras" in modules  # the log is read right: the package itself is there
    assert not modules & HEAVY, sorted(modules & HEAVY)
    if not command:  # every command the parser has is in COMMANDS, so each one's --help is run
        assert re.findall(r"^    (\w+)", result.stdout, re.M) == COMMANDS


def test_version_is_the_installed_metadata_without_tensorflow():
    result = fresh_python("-X", "importtime", "-m", "inception_keras.cli", "--version")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == f"inception-keras {metadata.version('inception-keras')}\n"
    assert ik.__version__ == metadata.version("inception-keras")
    assert not imported_modules(result.stderr) & HEAVY


def test_the_package_and_its_configuration_import_no_tensorflow():
    code = (
        "import sys\n"
        "import inception_keras as ik\n"
        "from inception_keras import architecture, data_config, preprocessing_config, recipes\n"
        "from inception_keras import pretrained, run_config\n"
        "from inception_keras.benchmark import BenchmarkConfig\n"
        "from inception_keras.export import FORMATS, QUANTIZATIONS, Tolerances\n"
        "config, data = run_config.run_configs(preset='quickstart')\n"
        "assert (config.variant, data.dataset) == ('bn', 'shapes/64px'), (config, data)\n"
        "ik.TrainConfig(epochs=2), ik.DataConfig(batch_size=4), BenchmarkConfig(), Tolerances()\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))\n"
    )
    result = fresh_python("-c", code, *sorted(HEAVY))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "[]\n"


def test_the_api_resolves_on_first_use():
    from inception_keras import GoogLeNet, data, evaluation, layers, model, training

    assert GoogLeNet is model.GoogLeNet is ik.GoogLeNet
    assert ik.fit is training.fit and ik.evaluate is evaluation.evaluate
    assert ik.LocalResponseNormalization is layers.LocalResponseNormalization
    assert ik.load_data is data.load_data and ik.TABLE_1 is model.TABLE_1
    assert set(ik.__all__) <= set(dir(ik))
    assert "GoogLeNet" in ik.__all__ and "TrainConfig" in ik.__all__
    # The configuration classes are one class, whichever module a user imports them from.
    from inception_keras.data import DataConfig
    from inception_keras.export.verify import Tolerances
    from inception_keras.preprocessing import MAX_IMAGE_BYTES, AugmentConfig

    assert DataConfig is ik.DataConfig and Tolerances is ik.export.Tolerances
    assert AugmentConfig is ik.preprocessing_config.AugmentConfig
    assert MAX_IMAGE_BYTES == ik.preprocessing_config.MAX_IMAGE_BYTES
    with pytest.raises(AttributeError, match="no_such_name"):
        ik.no_such_name  # noqa: B018


@pytest.mark.slow
def test_a_checkpoint_loads_after_importing_the_package_alone(tmp_path):
    path = tmp_path / "model.keras"
    ik.GoogLeNet(input_shape=(32, 32, 3), classes=3, variant="bn").save(path)
    load = "import keras, sys\nmodel = keras.saving.load_model(sys.argv[1], safe_mode=True)\n"
    report = "print(type(model.get_layer('conv1')).__module__)\n"
    # The package registers its Keras classes when Keras is imported, after it or before it.
    for first, then in (
        ("import inception_keras\n", ""),
        ("import keras\n", "import inception_keras\n"),
    ):
        result = fresh_python("-c", first + then + load + report, str(path))
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout == "inception_keras.layers\n"
    # Without the package Keras cannot: so it is the registration that loads it.
    result = fresh_python("-c", load, str(path))
    assert result.returncode != 0 and "inception_keras>" in result.stderr


# ---------------------------------------------------------------------------------------------
# The filter TensorFlow's start-up goes through
# ---------------------------------------------------------------------------------------------
NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
INFO = "I0000 00:00:1796292616.425813    2360 port.cc:153] oneDNN custom operations are on."
WARNING = "W0000 00:00:1796293755.864998    7367 tf_tfl_flatbuffer_helpers.cc:364] Ignored output."
CUINIT = (
    "E0000 00:00:1796292620.492350    2360 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)"
)
ERROR = "E0000 00:00:1796292620.492350    2360 some_kernel.cc:12] a real error"
PYTHON_WARNING = "/x/y.py:3: UserWarning: something the user must see"


@pytest.mark.parametrize(
    "level, drop, kept",
    [
        # The command line's default: no INFO, no notice; on a machine without a driver, no cuInit.
        (1, [logs.ABSL_NOTICE, logs.NO_DRIVER_CUINIT], [WARNING, ERROR, PYTHON_WARNING]),
        # A machine with a driver: a failing cuInit is a real error and is shown.
        (1, [logs.ABSL_NOTICE], [WARNING, CUINIT, ERROR, PYTHON_WARNING]),
        # The user's TF_CPP_MIN_LOG_LEVEL=0: INFO lines too.
        (0, [logs.ABSL_NOTICE], [INFO, WARNING, CUINIT, ERROR, PYTHON_WARNING]),
        # TF_CPP_MIN_LOG_LEVEL=2: warnings go as TensorFlow itself would drop them.
        (2, [logs.ABSL_NOTICE], [CUINIT, ERROR, PYTHON_WARNING]),
    ],
)
def test_the_startup_filter_drops_exactly_the_named_lines(capfd, level, drop, kept):
    lines = [NOTICE, INFO, WARNING, CUINIT, ERROR, PYTHON_WARNING]
    with logs.filtered_stderr(level, drop):
        os.write(2, "".join(line + "\n" for line in lines).encode())  # as C++ writes: the fd
    assert capfd.readouterr().err.splitlines() == kept


def test_a_crash_inside_the_filter_still_shows_its_message():
    # Written just before an abort (as a C++ library does when the CPU lacks an instruction set):
    # the child process that filters stderr outlives the crash and passes the line on; so does
    # a Python warning raised inside.
    code = (
        "import os, warnings\n"
        "from inception_keras import logs\n"
        "with logs.filtered_stderr(1, [logs.ABSL_NOTICE]):\n"
        "    warnings.warn('a Python warning nobody named')\n"
        "    os.write(2, b'I0000 00:00:1.5 1 port.cc:1] noise\\n')\n"
        "    os.write(2, b'F0000 00:00:1.5 1 cpu_feature_guard.cc:1] this CPU lacks AVX\\n')\n"
        "    os.abort()\n"
    )
    result = fresh_python("-c", code)
    assert result.returncode != 0
    assert "UserWarning: a Python warning nobody named" in result.stderr
    assert "this CPU lacks AVX" in result.stderr and "noise" not in result.stderr


def test_only_the_named_warning_is_ignored():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with logs.ignoring_warnings(r"Your input ran out of data", UserWarning):
            warnings.warn("Your input ran out of data; interrupting.", UserWarning, stacklevel=1)
            warnings.warn("a warning nobody named", UserWarning, stacklevel=1)
            warnings.warn(
                "Your input ran out of data, deprecated", DeprecationWarning, stacklevel=1
            )
        warnings.warn("Your input ran out of data, after the block", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == [
        "a warning nobody named",
        "Your input ran out of data, deprecated",
        "Your input ran out of data, after the block",
    ]


@contextlib.contextmanager
def records(logger):
    """The messages the Python logger ``logger`` hands to its handlers, while inside."""
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    handler, target = Keep(logging.DEBUG), logging.getLogger(logger)
    level = target.level
    target.addHandler(handler)
    target.setLevel(logging.DEBUG)
    try:
        yield seen
    finally:
        target.removeHandler(handler)
        target.setLevel(level)


def test_only_the_named_log_records_are_dropped(monkeypatch):
    with records("tensorflow") as seen:
        with logs.ignoring_log_records("tensorflow", r"^CounterV2 "):
            logging.getLogger("tensorflow").warning("CounterV2 (from ...) is deprecated")
            logging.getLogger("tensorflow").warning("a real problem")
        logging.getLogger("tensorflow").warning("CounterV2 after the block")
        monkeypatch.setenv(logs.VERBOSE_VARIABLE, "1")
        with logs.ignoring_log_records("tensorflow", r"^CounterV2 "):
            logging.getLogger("tensorflow").warning("CounterV2 when verbose")
    assert seen == ["a real problem", "CounterV2 after the block", "CounterV2 when verbose"]


def test_asking_whether_a_set_is_prepared_warns_no_more(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    builder = tfds.builder("shapes/smoke", data_dir=str(tmp_path))
    with records("absl") as seen:
        assert shapes.is_prepared(builder) is False
    assert seen == []
    # tfds itself still logs it (so the filter is what keeps it away), and --verbose shows it.
    monkeypatch.setenv(logs.VERBOSE_VARIABLE, "1")
    with records("absl") as seen:
        assert shapes.is_prepared(builder) is False
    assert any(re.match(r"Variant folder .* has no dataset_info\.json", m) for m in seen), seen


def test_preparing_the_shapes_set_into_a_log_draws_no_progress_bars(tmp_path, capsys):
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.utils import tqdm_utils

    assert not sys.stderr.isatty()  # pytest's capture, as a log file would be
    shapes.prepare("shapes/smoke", str(tmp_path))
    printed = capsys.readouterr()
    assert "\r" not in printed.err + printed.out and "\x1b[" not in printed.err + printed.out
    assert tqdm_utils._active is True  # the caller's setting is back
    try:  # and a caller's "off" stays off
        tfds.display_progress_bar(False)
        shapes.prepare("shapes/smoke", str(tmp_path / "again"))
        assert tqdm_utils._active is False
    finally:
        tfds.display_progress_bar(True)


@pytest.mark.slow
def test_reading_a_tfds_split_logs_no_deprecation(shapes_data_dir):
    from inception_keras.data import DataConfig, load_data

    config = DataConfig(dataset="shapes/smoke", data_dir=str(shapes_data_dir), image_size=32)
    with records("tensorflow") as seen:
        load_data(config)
    assert not [m for m in seen if "CounterV2" in m], seen


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------
def startup_lines(text):
    return [line for line in text.splitlines() if any(re.search(p, line) for p in STARTUP)]


def test_a_usage_error_is_still_one_line_at_once():
    result = fresh_python("-X", "importtime", "-m", "inception_keras.cli", "train", "--epochs")
    assert result.returncode == 2
    assert "train: error: argument --epochs: expected one argument" in result.stderr
    assert not imported_modules(result.stderr) & HEAVY


@pytest.mark.slow
def test_commands_show_no_tensorflow_startup_unless_verbose(tmp_path):
    model = str(tmp_path / "no.keras")
    predict = ["-m", "inception_keras.cli", "predict", str(tmp_path / "a.png"), "--model", model]
    quiet = fresh_python(*predict)
    assert quiet.returncode == 2
    # The user's mistake, and nothing else.
    assert quiet.stderr.splitlines() == [
        f"inception-keras predict: error: model {model!r} does not exist."
    ], quiet.stderr
    # Building a model runs TensorFlow's device search too (the cuInit line on a machine
    # without a GPU driver).
    summary = ["-m", "inception_keras.cli", "summary", "--variant", "bn", "--image-size", "64"]
    built = fresh_python(*summary)
    assert built.returncode == 0, built.stderr[-2000:]
    assert "inception_5b" in built.stdout
    assert startup_lines(built.stderr) == [], built.stderr
    # The same commands, asked to show everything: the lines are there, so it is the filter (and
    # not an accident of this machine) that keeps them away.
    for command in (["--verbose", *predict[2:]], [*summary[2:], "--verbose"]):
        loud = fresh_python("-m", "inception_keras.cli", *command)
        assert startup_lines(loud.stderr), loud.stderr
    loud = fresh_python(*summary, env={logs.VERBOSE_VARIABLE: "1"})
    assert startup_lines(loud.stderr), loud.stderr


# What every export printed, none of it about the model: the TFLite converter's C++ notes and
# TensorFlow's warning about a MetaGraph collection (SavedModel and ONNX).
EXPORT_NOISE = [
    r"Ignored output_format",
    r"Ignored drop_control_dependency",
    r"^fully_quantize: ",
    r"Skipping runtime version metadata",
    r"table_initializer",
]


@pytest.mark.slow
def test_export_shows_the_converters_notes_only_when_asked(tmp_path):
    """Asked to show everything, an export shows the notes: it is the filters that keep them out
    of the main job's export (``test_the_main_jobs_log_holds_no_noise``)."""
    import keras
    import numpy as np
    from PIL import Image

    import inception_keras as ik

    keras.utils.set_random_seed(0)
    checkpoint = tmp_path / "small.keras"
    ik.GoogLeNet(input_shape=(32, 32, 3), classes=3, variant="bn").save(checkpoint)
    # Class names make the SavedModel's lookup table, whose initializer TensorFlow warns about.
    (tmp_path / "train_config.json").write_text('{"class_names": ["cat", "dog", "owl"]}')
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        pixels = np.random.default_rng(i).integers(0, 256, (40, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(photos / f"{i}.png")
    command = ["-m", "inception_keras.cli", "export", "--model", str(checkpoint)]
    command += ["--formats", "saved_model,tflite,onnx", "--tflite", "float32,int8"]
    command += ["--calibration-dir", str(photos), "--calibration-images", "4"]

    def noise(text):
        return [line for line in text.splitlines() if any(re.search(p, line) for p in NOISE)]

    NOISE = EXPORT_NOISE + STARTUP
    loud = fresh_python(*command, "--output-dir", str(tmp_path / "loud"), "--verbose")
    assert loud.returncode == 0, loud.stderr[-3000:]
    shown = "\n".join(noise(loud.stderr))
    for pattern in EXPORT_NOISE:
        assert re.search(pattern, shown, re.MULTILINE), (pattern, loud.stderr[-3000:])


# What the main job's log used to carry, none of which a user can act on: the training's lines
# and LiteRT's note on its delegate (verify, predict).
NOISE = [
    *STARTUP,
    *EXPORT_NOISE,
    r"ran out of data",
    r"shuffle=True",
    r"CounterV2",
    r"dataset_info\.json",
    r"val_aux1_loss",
    r"val_aux2_loss",
    r"XNNPACK delegate",
]


@pytest.mark.slow
def test_the_main_jobs_log_holds_no_noise(quickstart_run):
    """scripts/quickstart.sh's output, every command's, piped to a file."""
    log = quickstart_run.log
    noise = [line for line in log.splitlines() if any(re.search(p, line) for p in NOISE)]
    assert noise == []
    # What it does print: one line per epoch (checked in test_logs.py) and the files exported.
    assert len(re.findall(r"^\d+/\d+ - .* val_predictions_top1: [\d.]+ ", log, re.M)) > 1
    assert "  googlenet_int8.tflite\n" in log and "  googlenet.onnx\n" in log


@pytest.mark.slow
def test_tflite_notes_its_delegate_only_when_asked(quickstart_run):
    """LiteRT's note on XNNPACK is there to be dropped: a predict asked to show everything
    shows it."""
    model = str(quickstart_run.export / "googlenet_float32.tflite")
    predict = [
        "-m",
        "inception_keras.cli",
        "predict",
        str(quickstart_run.samples),
        "--model",
        model,
    ]
    loud = fresh_python(*predict, "--verbose")
    assert loud.returncode == 0, loud.stderr[-3000:]
    assert re.search(r"^INFO: Created TensorFlow Lite XNNPACK delegate", loud.stderr, re.M), (
        loud.stderr
    )


def _option_default(parser, command, option):
    """The default the parser holds for ``--option`` of ``command``."""
    sub = next(a for a in parser._subparsers._group_actions if command in a.choices)
    action = next(a for a in sub.choices[command]._actions if option in a.option_strings)
    return action.default, action.choices


@pytest.mark.parametrize(
    "command, option, function, parameter",
    [
        ("summary", "--image-size", "inception_keras.model:GoogLeNet", None),
        ("summary", "--classes", "inception_keras.model:GoogLeNet", "classes"),
        (
            "evaluate",
            "--eval-batch-size",
            "inception_keras.evaluation:evaluate_dataset",
            "batch_size",
        ),
        ("verify", "--max-images", "inception_keras.export.verify:verify", "max_images"),
        ("verify", "--latency-runs", "inception_keras.export.verify:verify", "latency_runs"),
        ("predict", "--top-k", "inception_keras.predict:predict", "top_k"),
        ("predict", "--batch-size", "inception_keras.predict:predict", "batch_size"),
    ],
)
def test_command_line_defaults_are_the_apis(command, option, function, parameter):
    """The command line shows the API's own defaults (read here from the functions' signatures)."""
    import importlib
    import inspect

    from inception_keras.cli import build_parser

    module, name = function.split(":")
    api = getattr(importlib.import_module(module), name)
    default, _ = _option_default(build_parser(), command, option)
    if parameter is None:  # the input size: GoogLeNet's default input shape, (224, 224, 3)
        import keras

        assert (default, default, 3) == tuple(api(weights=None).input_shape[1:])
        keras.backend.clear_session()
    else:
        assert default == inspect.signature(api).parameters[parameter].default


def test_features_pooling_choices_are_the_apis():
    from inception_keras import features
    from inception_keras.cli import build_parser

    _, choices = _option_default(build_parser(), "features", "--pooling")
    assert [None if c == "none" else c for c in choices] == list(features.POOLINGS)

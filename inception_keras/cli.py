"""The ``inception-keras`` command: a thin layer over the Python API.

Each sub-command parses its arguments and calls one API function. Options for training are
generated from the configuration dataclasses (``TrainConfig``, ``DataConfig``), so every
hyper-parameter of the API is a flag and the two never drift apart.

Building the parser reads only the package's TensorFlow-free configuration modules, so ``--help``
and ``--version`` answer at once; a command imports TensorFlow (quietly, see
:func:`inception_keras.logs.import_tensorflow_quietly`) and then the API module it calls.

Longer than the package's other modules, and one thing: the parser of every sub-command and the
few lines that call the API for each.
"""

import argparse
import contextlib
import dataclasses
import json
import os
import re
import sys
import typing

from inception_keras import defaults, logs
from inception_keras.architecture import FEATURES_LAYER, GRAD_CAM_LAYER, VARIANTS
from inception_keras.benchmark.config import BenchmarkConfig
from inception_keras.data_config import DataConfig
from inception_keras.errors import UsageError
from inception_keras.export.config import (
    CALIBRATION_IMAGES,
    FORMATS,
    ONNX_OPSET,
    QUANTIZATIONS,
    Tolerances,
)
from inception_keras.preprocessing_config import (
    CROP_SCHEMES,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    AugmentConfig,
)
from inception_keras.pretrained import WEIGHTS_PRESETS, DownloadError
from inception_keras.recipes import PRESETS
from inception_keras.run_config import TrainConfig
from inception_keras.version import VERSION


def _field_help(cls):
    """``{field: text}`` from the ``Attributes:`` section of a dataclass docstring."""
    doc = (cls.__doc__ or "").split("Attributes:", 1)[-1]
    helps, names = {}, []
    for line in doc.splitlines():
        match = re.match(r"\s{4,8}([a-z_, ]+):\s*(.*)", line)
        if match and all(n.strip().isidentifier() for n in match.group(1).split(",")):
            names = [n.strip() for n in match.group(1).split(",")]
            for name in names:
                helps[name] = match.group(2)
        elif names and line.strip():
            for name in names:
                helps[name] += " " + line.strip()
    return helps


def _scalar_type(hint):
    """``int`` for ``int``, ``float`` for ``float | None`` ...; None if not a plain scalar."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return args[0] if len(args) == 1 and args[0] in (int, float, str, bool) else None


def _option_kind(hint):
    """How a field is given on the command line: ``(type, nargs)``, or None if it is not."""
    scalar = _scalar_type(hint)
    if scalar is not None:
        return scalar, None
    if typing.get_origin(hint) is tuple:
        items = typing.get_args(hint)
        if len(items) == 2 and items[1] is Ellipsis and items[0] in (int, float, str):
            return items[0], "+"
        if items and len(set(items)) == 1 and items[0] in (int, float, str):
            return items[0], len(items)
    # ``SomeConfig | None``: a switch (on: SomeConfig's defaults), its fields are options too.
    members = [a for a in typing.get_args(hint) if a is not type(None)]
    if len(members) == 1 and dataclasses.is_dataclass(members[0]):
        return bool, None
    return None


def add_dataclass_options(parser, cls, skip=(), title=None):
    """Adds ``--field-name`` for each field of ``cls`` that a command line can give.

    Options not given on the command line are absent from the parsed namespace (the help shows
    the dataclass's default), so the dataclass - or a preset - supplies every value not given.
    """
    hints, helps = typing.get_type_hints(cls), _field_help(cls)
    group = parser.add_argument_group(title or f"{cls.__name__} options")
    for field in dataclasses.fields(cls):
        kind = _option_kind(hints[field.name])
        if field.name in skip or kind is None:
            continue
        kind, nargs = kind
        flag = "--" + field.name.replace("_", "-")
        # Docstrings are reStructuredText: drop the markup for the terminal.
        text = re.sub(
            r":\w+:`([^`]*)`|``([^`]*)``",
            lambda m: m.group(1) or m.group(2),
            helps.get(field.name, ""),
        ).replace("%", "%%")
        default = field.default
        if kind is bool:
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=text
            )
            continue
        if default is None:
            shown = "unset"
        elif isinstance(default, tuple):
            shown = " ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in default)
        else:
            shown = default
        metavar = field.name.upper()
        if isinstance(nargs, int):
            metavar = tuple(f"{metavar}_{i}" for i in range(nargs))
            if nargs == 2 and field.name.endswith("_range"):
                metavar = ("MIN", "MAX")
        group.add_argument(
            flag,
            type=kind,
            nargs=nargs,
            default=argparse.SUPPRESS,
            metavar=metavar,
            help=f"{text} (default: {shown})",
        )


def options_for(args, *classes):
    """The parsed options that are fields of ``classes``, those given on the command line only."""
    names = {f.name for cls in classes for f in dataclasses.fields(cls)}
    return {
        name: tuple(value) if isinstance(value, list) else value
        for name, value in vars(args).items()
        if name in names
    }


def dataclass_from_options(cls, args, **overrides):
    """Builds ``cls`` from the parsed options that match its fields."""
    return cls(**{**options_for(args, cls), **overrides})


def _int_option(parser, flag, default, text, **kwargs):
    """An integer option whose help ends with the API's default: ``TEXT (default N)``."""
    parser.add_argument(
        flag, type=int, default=default, help=f"{text} (default {default})", **kwargs
    )


def _renamed(flag):
    """An argparse action storing the value of ``flag``, whose other spellings are its former
    names: still accepted, with a one-line note on stderr naming ``flag``."""

    class Store(argparse._StoreAction):
        def __call__(self, parser, namespace, values, option_string=None):
            if option_string != flag:
                print(
                    f"inception-keras: {option_string} is deprecated: use {flag}.", file=sys.stderr
                )
            super().__call__(parser, namespace, values, option_string)

    return Store


def _add_image_limits(parser, what):
    parser.add_argument(
        "--max-image-bytes",
        type=int,
        default=MAX_IMAGE_BYTES,
        metavar="BYTES",
        help=f"largest encoded image file; {what} (default {MAX_IMAGE_BYTES})",
    )
    parser.add_argument(
        "--max-image-pixels",
        type=int,
        default=MAX_IMAGE_PIXELS,
        metavar="PIXELS",
        help=f"largest width x height, read from the header; {what} (default {MAX_IMAGE_PIXELS})",
    )


def _summary(args):
    from inception_keras.model import GoogLeNet
    from inception_keras.naive import compare_naive, print_comparison
    from inception_keras.summary import print_summary

    if args.compare_naive:
        # The comparison is of two fixed networks: the paper variant and its naive twin.
        for flag, given in (("--variant", args.variant is not None), ("--aux", args.aux)):
            if given:
                raise UsageError(
                    f"`{flag}` does not apply with --compare-naive, which compares the paper "
                    "variant with the naive one."
                )
        print_comparison(compare_naive(image_size=args.image_size, classes=args.classes))
        return
    model = GoogLeNet(
        input_shape=(args.image_size, args.image_size, 3),
        classes=args.classes,
        include_aux=args.aux,
        variant=args.variant or "paper",
    )
    print_summary(model)


def _train(args):
    from inception_keras.training import train

    options = options_for(args, TrainConfig, DataConfig, AugmentConfig)
    print(train(preset=args.preset, **options).summary())


def _evaluate(args):
    from inception_keras.evaluation import evaluate_dataset

    result = evaluate_dataset(
        args.model,
        dataclass_from_options(DataConfig, args),
        crops=args.crops,
        batch_size=args.eval_batch_size,
        confusion=args.confusion,
    )
    print(
        f"{result.num_images} images, {result.crops} crop(s) each: top-1 {result.top1:.2%}, "
        f"top-5 {result.top5:.2%}, loss {result.loss:.4f}; skipped files: {result.skipped_files}"
    )
    if args.confusion:
        from inception_keras.plots.confusion import confusion_paths

        pairs = result.confused_pairs()
        print("Most confused (true -> predicted: images, share of the true class):")
        for pair in pairs:
            print(f"  {pair.format(result.class_names)}")
        if not pairs:
            print("  none: every image is predicted as its class")
        print("Confusion matrix: {} (counts: {})".format(*confusion_paths(args.confusion)))


def _plot(args):
    from inception_keras.plots.curves import plot_runs

    print(f"Wrote {plot_runs(args.runs, args.output)}")


def _export(args):
    from inception_keras.export import export_checkpoint

    path = export_checkpoint(
        args.model,
        args.output_dir,
        name=args.name,
        version=args.version,
        formats=args.formats.split(","),
        tflite_quantizations=args.tflite.split(","),
        calibration_images=args.calibration_images,
        calibration_dir=args.calibration_dir,
        onnx_opset=args.opset,
        overwrite=args.overwrite,
        max_image_bytes=args.max_image_bytes,
        max_image_pixels=args.max_image_pixels,
    )
    print(f"Exported to {path}:")
    for file in sorted(os.listdir(path)):
        print(f"  {file}")


def _convert(args):
    from inception_keras.convert import convert
    from inception_keras.files import metadata_path

    path = convert(args.source, args.output, overwrite=args.overwrite)
    print(f"Wrote {path} and {metadata_path(path)} (class names, provenance).")


def _verify(args):
    from inception_keras.export.verify import verify

    data_config = None
    if args.dataset:
        data_config = DataConfig(
            dataset=args.dataset,
            data_dir=args.data_dir,
            validation_split=args.validation_split,
            augment=None,
        )
    report = verify(
        args.directory,
        images=args.images,
        data_config=data_config,
        reference=args.reference,
        max_images=args.max_images,
        latency_runs=args.latency_runs,
        tolerances=dataclass_from_options(Tolerances, args),
    )
    print(json.dumps(report.to_json(), indent=2) if args.json else report.format())
    return 0 if report.passed else 1


def _predict(args):
    from inception_keras.predict import predict

    result = predict(
        args.model,
        args.images,
        top_k=args.top_k,
        batch_size=args.batch_size,
        image_size=args.image_size,
        max_image_bytes=args.max_image_bytes,
        max_image_pixels=args.max_image_pixels,
    )
    print(json.dumps(result.to_json(), indent=2) if args.json else result.format())
    for path, reason in result.errors.items():
        print(f"inception-keras predict: {path}: {reason}", file=sys.stderr)
    return 1 if result.errors else 0


def _samples(args):
    from inception_keras import shapes

    paths = shapes.write_images(args.directory, args.count, image_size=args.image_size)
    print(f"Wrote {len(paths)} images of the shapes set to {args.directory}")
    return 0


def _features(args):
    from inception_keras.features import extract_features

    # Options left out take the API's defaults.
    given = {k: v for k, v in vars(args).items() if k in ("layer", "batch_size", "image_size")}
    if "pooling" in vars(args):
        given["pooling"] = None if args.pooling == "none" else args.pooling
    terminal = sys.stderr.isatty()  # progress on a terminal; a log or a pipe gets the result only

    def progress(rows, total):
        print(f"\r{rows}/{total} images", end="", file=sys.stderr, flush=True)

    try:
        result = extract_features(
            args.model,
            args.images,
            args.output,
            overwrite=args.overwrite,
            max_image_bytes=args.max_image_bytes,
            max_image_pixels=args.max_image_pixels,
            on_batch=progress if terminal else None,
            **given,
        )
    finally:
        if terminal:
            print(file=sys.stderr)
    print(result.format())
    for path, reason in result.errors.items():
        print(f"inception-keras features: {path}: {reason}", file=sys.stderr)
    return 1 if result.errors else 0


def _explain(args):
    from inception_keras.explained_files import explain_files
    from inception_keras.plots.explain import save_explanations

    options = {"layer": args.layer} if args.layer is not None else {}
    explained = explain_files(
        args.model,
        args.images,
        target_class=args.target_class,
        branches=args.branches,
        **options,
    )
    top_k = {"top_k": args.top_k} if args.top_k is not None else {}
    pictures, branches = save_explanations(explained, args.output_dir, **top_k)
    explanation, names = explained.explanation, explained.class_names
    for i, (path, picture) in enumerate(zip(explained.paths, pictures)):
        chosen = int(explanation.class_indices[i])
        probability = explanation.probabilities[i, chosen]
        print(f"{path}: {names[chosen]} {probability:.2%} -> {picture}")
    if branches is not None:
        print()
        print(explanation.branches.format(names))
        print(f"-> {branches}")
    for path, reason in explained.errors.items():
        print(f"inception-keras explain: {path}: {reason}", file=sys.stderr)
    return 1 if explained.errors else 0


def _benchmark(args):
    from inception_keras.benchmark import run, save_json

    config = dataclass_from_options(BenchmarkConfig, args)
    # With --json, stdout carries only the JSON document; progress goes to stderr.
    report = run(
        config,
        log=lambda line: print(line, file=sys.stderr if args.json else sys.stdout, flush=True),
    )
    print(json.dumps(report.to_json(), indent=2) if args.json else report.format())
    if args.output:
        save_json(report, args.output)


def build_parser():
    # --verbose is accepted before the command and after it (each sub-command shares it).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="also show TensorFlow's start-up logging and the libraries' messages this command "
        f"hides as noise (or set {logs.VERBOSE_VARIABLE}=1)",
    )
    parser = argparse.ArgumentParser(
        prog="inception-keras",
        description="GoogLeNet / Inception v1 (Szegedy et al., CVPR 2015) for Keras 3 on "
        "TensorFlow.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, **kwargs):
        return subparsers.add_parser(name, parents=[common], **kwargs)

    summary = command(
        "summary",
        help="print Table 1 of the paper computed from a freshly built model",
        description="Build the network and print the paper's Table 1 columns computed from the "
        "live model, with the paper's published params and ops beside ours.",
    )
    summary.add_argument(
        "--variant",
        choices=tuple(VARIANTS),
        default=None,
        help="'paper' (Table 1 with LRN, default), 'bn' (BatchNorm, no LRN), "
        "'slim' (TF-slim's Inception v1) or 'naive' (paper with the naive modules of Figure 2(a))",
    )
    summary.add_argument(
        "--image-size",
        "--input-size",
        dest="image_size",
        action=_renamed("--image-size"),
        type=int,
        default=defaults.INPUT_SIZE,
        metavar="PIXELS",
        help=f"square input size (default {defaults.INPUT_SIZE}, at least 32; --input-size: its "
        "former name)",
    )
    _int_option(summary, "--classes", defaults.IMAGENET_CLASSES, "number of classes")
    summary.add_argument("--aux", action="store_true", help="include the two auxiliary classifiers")
    summary.add_argument(
        "--compare-naive",
        action="store_true",
        help="instead, set the paper's network beside the same network with naive inception "
        "modules (Figure 2(a)): depth, weights and multiply-adds per block, the totals, and the "
        "size against AlexNet's",
    )
    summary.set_defaults(func=_summary)

    train = command(
        "train",
        help="train GoogLeNet with aux heads (model.fit) on a tfds set, a folder or shapes",
        description="Train GoogLeNet with its auxiliary classifiers (losses 1 + 0.3 + 0.3) with "
        "Keras fit. Re-running the same command after an interruption resumes at the last "
        "finished epoch. Checkpoints, CSV and TensorBoard logs go to --output-dir.",
    )
    train.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="start from a named set of options (flags given here override it); "
        "'quickstart': the built-in set at 64 px within a 2-core CPU budget",
    )
    add_dataclass_options(train, TrainConfig)
    # image_size and seed are shared: TrainConfig's flags set DataConfig's fields too.
    add_dataclass_options(train, DataConfig, skip=("image_size", "seed"))
    add_dataclass_options(train, AugmentConfig, title="augmentation options (with --augment)")
    train.add_argument(  # the former spelling of --area-range FRACTION 1
        "--min-crop-area",
        type=lambda text: (float(text), 1.0),
        dest="area_range",
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )
    train.set_defaults(func=_train)
    parser.presets = (train, PRESETS)

    evaluate = command(
        "evaluate",
        help="top-1/top-5 and loss of a checkpoint on a split, with 1, 10 or 144 crops",
        description="Evaluate a .keras checkpoint or an exported artefact (SavedModel, TFLite, "
        "ONNX) on the validation part of a data set (choose it "
        "with --validation-split, e.g. 'test'), averaging the softmax over 1 (central), 10 or "
        "144 (the paper's scheme) crops per image.",
    )
    evaluate.add_argument(
        "--model",
        required=True,
        help="a .keras checkpoint (best.keras, last.keras), an exported "
        "SavedModel version directory, a .tflite or an .onnx file",
    )
    evaluate.add_argument("--crops", type=int, choices=CROP_SCHEMES, default=1)
    _int_option(
        evaluate,
        "--eval-batch-size",
        defaults.EVAL_BATCH_SIZE,
        "crops per forward pass",
        metavar="CROPS",
    )
    add_dataclass_options(
        evaluate,
        DataConfig,
        skip=(
            "image_size",
            "batch_size",
            "shuffle_buffer",
            "cache",
            "cache_dir",
            "shapes_stream",
            "deterministic",
            "train_split",
        ),
    )
    evaluate.add_argument(
        "--confusion",
        metavar="PATH.png",
        help="draw the confusion matrix there (with many classes, those of the most frequent "
        "mistakes), write its counts to PATH.csv and list the most confused pairs",
    )
    evaluate.set_defaults(func=_evaluate)

    from inception_keras.files import CURVES_FILE, HISTORY_FILE

    plot = command(
        "plot",
        help=f"draw the training curves of one or several runs from their {HISTORY_FILE}",
        description=f"Draw loss, top-1/top-5 and learning rate per epoch from each RUN_DIR's "
        f"{HISTORY_FILE}, the best epoch (highest validation top-1) marked. One run: written to "
        f"RUN_DIR/{CURVES_FILE}, the picture training keeps up to date. Several: overlaid, one "
        "colour per run, into --output.",
    )
    plot.add_argument("runs", nargs="+", metavar="RUN_DIR", help="training output folders")
    plot.add_argument(
        "--output",
        metavar="PATH.png",
        help=f"the picture to write (default for one run: RUN_DIR/{CURVES_FILE}; required for "
        "several)",
    )
    plot.set_defaults(func=_plot)

    export = command(
        "export",
        help="export a checkpoint as SavedModel (TF Serving), TFLite and ONNX",
        description="Export the inference model of a checkpoint (aux heads stripped, averaged "
        "weights) into OUTPUT_DIR/NAME/VERSION/: a SavedModel for TF Serving plus TFLite and ONNX "
        "files and manifest.json. An existing version is never overwritten without --overwrite.",
    )
    export.add_argument(
        "--model",
        "--checkpoint",
        dest="model",
        action=_renamed("--model"),
        required=True,
        help="a .keras checkpoint written by train (--checkpoint: its former name)",
    )
    export.add_argument(
        "--output-dir",
        "--output",
        dest="output_dir",
        action=_renamed("--output-dir"),
        default="saved_models",
        help="base directory (default saved_models; --output: its former name)",
    )
    export.add_argument("--name", default="googlenet", help="model name (default googlenet)")
    export.add_argument("--version", type=int, default=None, help="version (default: next free)")
    export.add_argument(
        "--formats",
        default=",".join(FORMATS),
        help=f"comma-separated subset of {','.join(FORMATS)} (default all)",
    )
    export.add_argument(
        "--tflite",
        default=",".join(QUANTIZATIONS),
        help=f"comma-separated TFLite variants, a subset of {','.join(QUANTIZATIONS)} "
        "(default all)",
    )
    export.add_argument(
        "--calibration-images",
        type=int,
        default=CALIBRATION_IMAGES,
        help=f"training images used to calibrate int8 (default {CALIBRATION_IMAGES})",
    )
    export.add_argument(
        "--calibration-dir",
        metavar="FOLDER",
        help="calibrate int8 with the images under this folder instead of the "
        "training data (for a converted ImageNet model)",
    )
    export.add_argument(
        "--opset", type=int, default=ONNX_OPSET, help=f"ONNX opset (default {ONNX_OPSET})"
    )
    export.add_argument("--overwrite", action="store_true", help="replace an existing version")
    _add_image_limits(export, "the SavedModel's serving_bytes signature refuses a larger image")
    export.set_defaults(func=_export)

    convert = command(
        "convert",
        help="published ImageNet weights (BVLC Caffe, TF-slim) as a .keras model",
        description="Convert BVLC's GoogLeNet (.caffemodel, the paper's network: variant paper, "
        "with its two aux heads) or TF-slim's Inception v1 (checkpoint; variant slim) into a "
        ".keras model built by this package, with the ImageNet class names in a JSON file beside "
        f"it. SOURCE {' or '.join(map(repr, WEIGHTS_PRESETS))} downloads the published file "
        "once into the Keras cache.",
    )
    convert.add_argument(
        "source",
        help=f"{', '.join(map(repr, WEIGHTS_PRESETS))}, a .caffemodel, a TF-slim checkpoint "
        "prefix (.../inception_v1.ckpt) or its .tar.gz",
    )
    convert.add_argument("--output", required=True, help="the .keras file to write")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    convert.set_defaults(func=_convert)

    verify = command(
        "verify",
        help="load every artefact of an export in its runtime and compare with Keras",
        description="Load the SavedModel, every .tflite and the .onnx file of an export version "
        "directory in the runtime that serves each, run them on the same real images as the "
        "reference (the checkpoint named in manifest.json, else the SavedModel) and print size, "
        "max |diff|, top-1 agreement and batch-1 latency. Checks manifest.json's sha256 of every "
        "file. Exit status 1 when a tolerance or a file check is broken.",
    )
    verify.add_argument(
        "directory", help="an export version directory, e.g. saved_models/googlenet/1"
    )
    verify.add_argument(
        "--images",
        nargs="+",
        metavar="PATH",
        help="image files or folders to run (default: the validation split the "
        "source checkpoint was trained on, else rendered built-in shapes)",
    )
    verify.add_argument(
        "--dataset", help="run this data set's validation split instead (tfds name or image folder)"
    )
    verify.add_argument("--data-dir", help="tfds data directory for --dataset")
    verify.add_argument("--validation-split", help="tfds split for --dataset")
    verify.add_argument(
        "--reference",
        help="the model to compare with (default: the manifest's "
        "source checkpoint if it exists, else the SavedModel)",
    )
    _int_option(verify, "--max-images", defaults.VERIFY_IMAGES, "images to run")
    _int_option(verify, "--latency-runs", defaults.LATENCY_RUNS, "timed batch-1 calls per artefact")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    add_dataclass_options(verify, Tolerances)
    verify.set_defaults(func=_verify)

    predict = command(
        "predict",
        help="top-k classes of image files with any artefact",
        description="Predict the top-k classes of JPEG/PNG/BMP/GIF images (files or folders) with "
        "a .keras checkpoint, a SavedModel directory, a .tflite or an .onnx file, through the "
        "evaluation preprocessing. Files that cannot be read are reported (exit status 1) and "
        "the others still predicted.",
    )
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    predict.add_argument(
        "--model",
        required=True,
        help="a .keras checkpoint, a SavedModel version directory, a .tflite or an .onnx file",
    )
    _int_option(predict, "--top-k", defaults.TOP_K, "classes per image")
    _int_option(predict, "--batch-size", defaults.IMAGE_BATCH_SIZE, "images per forward pass")
    predict.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="input size, only for a model whose input size is not fixed",
    )
    predict.add_argument("--json", action="store_true", help="print JSON")
    _add_image_limits(predict, "a larger image is reported, never decoded")
    predict.set_defaults(func=_predict)

    samples = command(
        "samples",
        help="write a few new images of the built-in shapes set, named by their class",
        description="Write images of the built-in shapes set's test split as PNG files named by "
        "their number and class (00_star.png, 01_triangle.png ...): new images to try predict, "
        "features or explain on.",
    )
    samples.add_argument("directory", help="folder to write them into (made if it is missing)")
    _int_option(samples, "--count", defaults.SAMPLE_IMAGES, "number of images")
    _int_option(samples, "--image-size", defaults.SAMPLE_SIZE, "side in pixels", metavar="PIXELS")
    samples.set_defaults(func=_samples)

    features = command(
        "features",
        help="a layer's features of image files in a .npy, for scikit-learn or nearest neighbours",
        description="Run a .keras checkpoint's main path over JPEG/PNG/BMP/GIF images (files or "
        "folders) through the evaluation preprocessing and write one row per image to "
        "PATH.npy (float32; by default pool5, the global average pool the classifier reads) and "
        "the image files to PATH.csv in the same order, with columns path and class (the "
        "sub-folder of a given folder the image is in). Images stream in batches: memory holds "
        "one. Files that cannot be read get no row and are reported (exit status 1).",
    )
    features.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    features.add_argument(
        "--model", required=True, metavar="CHECKPOINT.keras", help="a .keras checkpoint"
    )
    features.add_argument(
        "--output", required=True, metavar="PATH.npy", help="the features file; PATH.csv beside it"
    )
    features.add_argument(
        "--layer",
        default=argparse.SUPPRESS,
        metavar="NAME",
        help="the layer by its paper name (inception_4e, inception_5b, conv2, ...; default "
        f"{FEATURES_LAYER}, the global average pool the classifier reads)",
    )
    features.add_argument(
        "--pooling",
        choices=tuple(pooling or "none" for pooling in defaults.POOLINGS),
        default=argparse.SUPPRESS,
        help="how a layer's feature map becomes one vector per image: avg (the default, the mean "
        "over height and width), max, or none to keep the whole map",
    )
    features.add_argument(
        "--batch-size",
        type=int,
        default=argparse.SUPPRESS,
        metavar="N",
        help="images per forward pass, all that memory holds at once (default "
        f"{defaults.IMAGE_BATCH_SIZE})",
    )
    features.add_argument(
        "--image-size",
        type=int,
        default=argparse.SUPPRESS,
        metavar="PIXELS",
        help="input size, only for a model whose input size is not fixed",
    )
    features.add_argument(
        "--overwrite", action="store_true", help="replace an existing PATH.npy and PATH.csv"
    )
    _add_image_limits(features, "a larger image is reported, never decoded")
    features.set_defaults(func=_features)

    explain = command(
        "explain",
        help="Grad-CAM pictures of where the network looked, and each branch's share",
        description="Draw where a .keras checkpoint looked to classify each image (Grad-CAM at "
        "one layer, over the image as the model saw it: central crop, resized) into "
        "OUTPUT/<name>_gradcam.png, and print each image's class and picture. --branches also "
        "prints and draws (branches.png) each inception block's four branches' shares of the "
        "decision, averaged over the images. Exported artefacts keep no gradients: give the "
        "checkpoint they were exported from.",
    )
    explain.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    explain.add_argument("--model", required=True, help="a .keras checkpoint")
    explain.add_argument(
        "--layer",
        help="the layer to explain at, by its paper name (inception_3a ... inception_5b, conv2, "
        f"...; default {GRAD_CAM_LAYER})",
    )
    explain.add_argument(
        "--class",
        dest="target_class",
        metavar="NAME|INDEX",
        help="explain this class for every image (default: each image's predicted class)",
    )
    explain.add_argument(
        "--top-k",
        type=int,
        help="how many of the most probable classes each picture lists (0: none)",
    )
    explain.add_argument(
        "--branches",
        action="store_true",
        help="also each inception block's branch shares of the decision (table and branches.png)",
    )
    explain.add_argument(
        "--output-dir",
        "--output",
        dest="output_dir",
        action=_renamed("--output-dir"),
        required=True,
        metavar="DIR",
        help="folder for the pictures (--output: its former name)",
    )
    explain.set_defaults(func=_explain)

    benchmark = command(
        "benchmark",
        help="training/inference speed against this machine's matmul roofline",
        description="Measure this machine's fp32 matrix-multiply rate, then training throughput "
        "(paper setup, aux heads on) per precision with and without XLA, from memory and "
        "through the tf.data JPEG pipeline, the input pipeline alone, and batch-1 latency and "
        "batch throughput of every export format; each as GFLOP/s and a share of the roofline, "
        "with the performance targets as ratios. --quick: a smoke run of a few minutes.",
    )
    add_dataclass_options(benchmark, BenchmarkConfig)
    benchmark.add_argument("--json", action="store_true", help="print the report as JSON")
    benchmark.add_argument("--output", help="also write the JSON report to this file")
    benchmark.set_defaults(func=_benchmark)
    return parser


@contextlib.contextmanager
def _verbosity(verbose):
    """``--verbose`` as the environment variable every part of the package reads, for this call."""
    previous = os.environ.get(logs.VERBOSE_VARIABLE)
    if verbose:
        os.environ[logs.VERBOSE_VARIABLE] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(logs.VERBOSE_VARIABLE, None)
        else:
            os.environ[logs.VERBOSE_VARIABLE] = previous


def main(argv=None):
    args = build_parser().parse_args(argv)
    with _verbosity(getattr(args, "verbose", False)):
        return _run(args)


def _run(args):
    # Every command needs TensorFlow: import it first, showing only what a user can act on.
    logs.import_tensorflow_quietly()
    try:
        return args.func(args) or 0  # verify and predict return 1 for a failed check or file
    except DownloadError as error:  # not the user's mistake: the data could not be had
        print(f"inception-keras {args.command}: error: {error}", file=sys.stderr)
        return 1
    except UsageError as error:  # bad arguments or input: a message, not a traceback
        print(f"inception-keras {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a path that cannot be read or written: name it, no traceback
        where = " -> ".join(str(p) for p in (error.filename, error.filename2) if p is not None)
        reason = error.strerror or str(error)
        print(
            f"inception-keras {args.command}: error: {where or 'a file'}: {reason}", file=sys.stderr
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())

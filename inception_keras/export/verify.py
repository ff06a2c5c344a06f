"""Proves an export directory: every artefact loaded in the runtime that serves it, run on the same
real images as the Keras model it came from, held to a tolerance per numeric format.

:func:`verify` checks ``manifest.json``'s sha256 of every file, then runs the SavedModel, each
``.tflite`` and the ``.onnx`` file on images preprocessed once (the evaluation transform) and
compares with the reference - the source checkpoint named in the manifest, or the SavedModel when
that checkpoint is gone or no longer the file that was exported (its sha256 is in the manifest) -
and times each at batch 1. Tolerances (:class:`Tolerances`): float32
artefacts max |diff| of the probabilities, float16 and int8 top-1 agreement with the reference.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from inception_keras import data, image_batches, preprocessing, shapes
from inception_keras.defaults import LATENCY_RUNS, VERIFY_IMAGES
from inception_keras.errors import UsageError
from inception_keras.export.config import QUANTIZATIONS, Tolerances
from inception_keras.export.versioned import file_hashes, run_data_config
from inception_keras.files import MANIFEST, file_digest, json_field
from inception_keras.runners import (
    FORMAT_NAMES,
    artefact_format,
    asset_class_names,
    checkpoint_class_names,
    load_runner,
)
from inception_keras.timing import timed_calls


@dataclasses.dataclass
class ArtefactCheck:
    """One artefact's results; ``passed`` is ``None`` for the reference itself."""

    format: str
    file: str
    bytes: int
    max_diff: float
    agreement: float
    accuracy: float | None  # top-1 against the labels, when the images have labels
    latency_ms: float
    requirement: str
    passed: bool | None


@dataclasses.dataclass
class VerifyReport:
    """Result of :func:`verify`."""

    directory: str
    reference: str
    reference_reason: str
    images: str
    num_images: int
    rows: list[ArtefactCheck]
    file_problems: list[str]
    name_problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def passed(self):
        return (
            not self.file_problems
            and not self.name_problems
            and all(row.passed is not False for row in self.rows)
        )

    def to_json(self):
        return {**dataclasses.asdict(self), "passed": self.passed}

    def format(self):
        header = (
            "format",
            "file",
            "size",
            "max |diff|",
            "top-1 agree",
            "top-1 acc",
            "batch-1 ms",
            "requirement",
            "result",
        )
        table = [header]
        for row in self.rows:
            result = "reference" if row.passed is None else ("ok" if row.passed else "FAILED")
            accuracy = "-" if row.accuracy is None else f"{row.accuracy:.2%}"
            table.append(
                (
                    row.format,
                    row.file,
                    f"{row.bytes / 1e6:.1f} MB",
                    f"{row.max_diff:.2e}",
                    f"{row.agreement:.2%}",
                    accuracy,
                    f"{row.latency_ms:.2f}",
                    row.requirement,
                    result,
                )
            )
        widths = [max(len(line[i]) for line in table) for i in range(len(header))]
        lines = [
            f"Verifying {self.directory} against {self.reference}",
            f"({self.reference_reason})",
            f"on {self.num_images} images from {self.images}:",
            "",
        ]
        lines += [
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in table
        ]
        lines.append("")
        if self.file_problems:
            lines += [f"{MANIFEST}: {problem}" for problem in self.file_problems]
        else:
            lines.append(f"{MANIFEST}: every file's sha256 and size match.")
        if self.name_problems:
            lines += [f"class names: {problem}" for problem in self.name_problems]
        else:
            lines.append("class names: the manifest, the SavedModel and the reference agree.")
        lines.append("PASSED" if self.passed else "FAILED: a tolerance or a file check is broken.")
        return "\n".join(lines)


def check_files(directory):
    """Problems between ``manifest.json`` and the files in ``directory`` (empty: all match)."""
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path) as f:
            listed = json.load(f)["files"]
    except FileNotFoundError:
        return ["missing, so the files' hashes cannot be checked"]
    except (ValueError, KeyError, TypeError) as error:
        return [f"unreadable ({error!r})"]
    present = file_hashes(directory)
    problems = [f"{name} is listed but missing" for name in listed if name not in present]
    problems += [
        f"{name} has changed (sha256 or size differs from the manifest)"
        for name in listed
        if name in present and present[name] != listed[name]
    ]
    problems += [f"{name} is not listed" for name in present if name not in listed]
    return problems


def check_class_names(directory, reference):
    """Problems between the class names an export ships - ``manifest.json``'s, the SavedModel's
    asset - and the reference model's own (empty: all that exist agree). The manifest's names
    are not covered by its hashes, so they are held to the other two."""
    found = {}
    manifest = json_field(os.path.join(directory, MANIFEST), "class_names")
    if manifest is not None:
        found[MANIFEST] = tuple(str(name) for name in manifest)
    asset = asset_class_names(directory)
    if asset is not None:
        found["the SavedModel's assets/class_names.txt"] = asset
    kind = artefact_format(reference)
    own = None
    if kind == "keras":
        own = checkpoint_class_names(reference)
    elif kind == "saved_model" and os.path.abspath(reference) != os.path.abspath(directory):
        own = asset_class_names(reference)
    if own is not None:
        found[f"the reference's ({reference})"] = own
    if len(found) < 2:
        return []
    problems = []
    (first, expected), *others = found.items()
    for where, names in others:
        if names != expected:
            index = next(
                (i for i, (a, b) in enumerate(zip(expected, names)) if a != b),
                min(len(expected), len(names)),
            )
            shown = [n[index] if index < len(n) else "(none)" for n in (expected, names)]
            problems.append(
                f"{first} and {where} differ ({len(expected)} vs {len(names)} names; "
                f"class {index}: {shown[0]!r} vs {shown[1]!r})"
            )
    return problems


def artefacts(directory):
    """``[(format label, path, tolerance kind)]`` for every artefact in an export directory."""
    found = []
    if os.path.isfile(os.path.join(directory, "saved_model.pb")):
        found.append(("SavedModel", directory, "float32"))
    tflite = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name.endswith(".tflite"):
            stem = name[: -len(".tflite")]
            # Longest first: "dynamic_int8" before "int8". Unknown names are held to float32.
            quantization = next(
                (q for q in sorted(QUANTIZATIONS, key=len, reverse=True) if stem.endswith("_" + q)),
                "float32",
            )
            kind = "int8" if quantization.endswith("int8") else quantization
            tflite.append(
                (QUANTIZATIONS.index(quantization), (f"TFLite {quantization}", path, kind))
            )
        elif name.endswith(".onnx"):
            found.append(("ONNX", path, "float32"))
    return found + [entry for _, entry in sorted(tflite, key=lambda item: item[0])]


def _manifest_source(directory):
    """``(source, problem)``: the manifest's source checkpoint if it can be the reference, else
    ``None`` and why not - none named, gone, or no longer the file that was exported (a later run
    wrote the same path: its sha256 differs from the manifest's)."""
    manifest = os.path.join(directory, MANIFEST)
    source = json_field(manifest, "source")
    if not source:
        return None, "the manifest names no source checkpoint"
    if not os.path.isfile(source):
        return None, f"the manifest's source {source!r} is gone"
    exported = json_field(manifest, "source_sha256")
    if exported is not None and file_digest(source) != exported:
        return (
            None,
            f"the manifest's source {source!r} has changed since the export (sha256 differs)",
        )
    return source, None


def verification_images(image_size, images=None, data_config=None, limit=512, source=None):
    """Up to ``limit`` eval-preprocessed images: ``(float32 [N, S, S, 3], int labels [N] or None,
    where they came from)``.

    ``images`` (files and/or folders) wins; then ``data_config``'s validation split; then the
    validation split the ``source`` checkpoint was trained on (its ``data_config.json``); else
    freshly rendered validation images of the built-in ``shapes`` set.
    """
    if images:
        files, errors = data.expand_image_paths(images)
        if errors:
            raise UsageError(
                "cannot use these images: "
                + "; ".join(f"{path}: {reason}" for path, reason in errors.items())
            )
        dataset, _ = image_batches.image_files_dataset(files[:limit], image_size=image_size)
        dataset = dataset.map(
            lambda batch, paths: (batch, -tf.ones_like(paths, tf.int64))
        ).unbatch()
        description = f"{len(files[:limit])} given file(s)"
    else:
        if data_config is None and source and os.path.isfile(source):
            data_config = run_data_config(source)
        if data_config is not None:
            examples, _, _ = data.load_examples(data_config)
            dataset = examples.map(
                lambda image, label: (
                    preprocessing.eval_transform(image, image_size, data_config.crop_fraction),
                    tf.cast(label, tf.int64),
                )
            )
            description = f"{data_config.dataset} (validation split)"
        else:
            rendered, labels = zip(*shapes.generate("validation", limit, 128))
            dataset = tf.data.Dataset.from_tensor_slices(
                (np.stack(rendered), np.array(labels, np.int64))
            ).map(lambda image, label: (preprocessing.eval_transform(image, image_size), label))
            description = "the built-in shapes set (rendered validation images)"
    batches = [(x.numpy(), y.numpy()) for x, y in dataset.take(limit).batch(64)]
    if not batches:
        raise UsageError(f"no images could be read from {description}.")
    labels = np.concatenate([y for _, y in batches])
    return (
        np.concatenate([x for x, _ in batches]),
        None if (labels < 0).any() else labels,
        description,
    )


def verify(
    directory,
    images=None,
    data_config=None,
    reference=None,
    max_images=VERIFY_IMAGES,
    latency_runs=LATENCY_RUNS,
    tolerances=Tolerances(),
):
    """Verifies every artefact of an export version directory.

    Args:
        directory: a version directory written by :func:`inception_keras.export.export`.
        images: image files and/or folders to run (default: see :func:`verification_images`).
        data_config: a ``DataConfig`` whose validation split to run instead.
        reference: the model to compare with (any artefact path); default the manifest's source
            checkpoint if it is still the file that was exported (same sha256), else the
            SavedModel in ``directory``.
        max_images: images to run at most.
        latency_runs: timed batch-1 calls per artefact (after warm-up) for the mean latency.
        tolerances: :class:`Tolerances`.

    Returns:
        A :class:`VerifyReport`; ``report.passed`` is False when a tolerance or a file check is
        broken.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise UsageError(f"export directory {directory!r} does not exist.")
    found = artefacts(directory)
    if not found:
        raise UsageError(f"{directory!r} holds no SavedModel, .tflite or .onnx artefact.")
    file_problems = check_files(directory)
    # An unusable source is neither the reference nor where the verification images come from.
    source, source_problem = _manifest_source(directory)
    if reference is not None:
        reason = "given as the reference"
    elif source:
        reference, reason = source, "the checkpoint the manifest names as the export's source"
    else:
        reference = found[0][1]
        reason = f"{source_problem}; the {found[0][0]} stands in"
    name_problems = check_class_names(directory, reference)
    reference_runner = load_runner(reference)
    size = reference_runner.input_shape[1]
    inputs, labels, description = verification_images(size, images, data_config, max_images, source)
    expected = _run(reference_runner, inputs)

    def row(label, path, runner, kind):
        return _row(
            label, path, directory, runner, inputs, labels, expected, latency_runs, kind, tolerances
        )

    rows = [
        row(
            f"{FORMAT_NAMES[artefact_format(reference)]} (reference)",
            reference,
            reference_runner,
            None,
        )
    ]
    for label, path, kind in found:
        if os.path.abspath(path) == os.path.abspath(reference):
            continue
        runner = load_runner(path)
        if (
            runner.input_shape[1:] != reference_runner.input_shape[1:]
            or runner.num_classes != reference_runner.num_classes
        ):
            raise UsageError(
                f"{path!r} takes {runner.input_shape[1:]} and predicts "
                f"{runner.num_classes} classes, but the reference {reference!r} takes "
                f"{reference_runner.input_shape[1:]} and predicts "
                f"{reference_runner.num_classes}."
            )
        rows.append(row(label, path, runner, kind))
    return VerifyReport(
        directory,
        reference,
        reason,
        description,
        len(inputs),
        rows,
        file_problems,
        name_problems,
    )


def _run(runner, inputs, batch_size=32):
    return np.concatenate(
        [
            np.asarray(runner(inputs[i : i + batch_size]), np.float32)
            for i in range(0, len(inputs), batch_size)
        ]
    )


def _row(label, path, directory, runner, inputs, labels, expected, latency_runs, kind, tolerances):
    got = _run(runner, inputs)
    max_diff = float(np.max(np.abs(got - expected)))
    agreement = float(np.mean(np.argmax(got, -1) == np.argmax(expected, -1)))
    accuracy = None if labels is None else float(np.mean(np.argmax(got, -1) == labels))
    if kind is None:
        requirement, passed = "", None
    elif kind == "float32":
        requirement = f"max |diff| <= {tolerances.float32_max_diff:g}"
        passed = max_diff <= tolerances.float32_max_diff
    else:
        needed = tolerances.float16_agreement if kind == "float16" else tolerances.int8_agreement
        requirement, passed = f"top-1 agree >= {needed:.0%}", agreement >= needed
    if os.path.isdir(path):
        shown = "saved_model.pb, variables/"
    elif os.path.dirname(os.path.abspath(path)) == os.path.abspath(directory):
        shown = os.path.basename(path)
    else:
        shown = path
    return ArtefactCheck(
        label,
        shown,
        _size(path),
        max_diff,
        agreement,
        accuracy,
        _latency_ms(runner, inputs[:1], latency_runs),
        requirement,
        passed,
    )


def _size(path):
    """Bytes of a file, or of a SavedModel's own files (not the other artefacts beside them)."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            top_level = root == path
            if not top_level or name.startswith(("saved_model.", "fingerprint.")):
                total += os.path.getsize(os.path.join(root, name))
    return total


def _latency_ms(runner, image, runs, warmup=3):
    return float(np.mean(timed_calls(runner, image, runs, warmup))) * 1e3 if runs else 0.0

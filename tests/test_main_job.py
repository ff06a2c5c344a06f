"""The README's main job, ``scripts/quickstart.sh``, end to end: tests/conftest.py runs it once
per test run, in a folder of its own, and other test files share its model and its export."""

import re

import pytest

from inception_keras.predict import predict

pytestmark = pytest.mark.slow

# The files of a default export, SavedModel first: the ones the main job's export holds.
ARTEFACTS = (
    "saved_model.pb",
    "googlenet.onnx",
    "googlenet_float32.tflite",
    "googlenet_float16.tflite",
    "googlenet_dynamic_int8.tflite",
    "googlenet_int8.tflite",
)


def verify_table(log):
    """The rows of the table ``inception-keras verify`` printed, each split into its columns."""
    table = log.split("\nformat ", 1)[1].split("\n\n", 1)[0]
    return [re.split(r"\s{2,}", row.strip()) for row in table.splitlines()[1:]]


def test_it_prints_table_1_trains_and_exports_every_format(quickstart_run):
    log = quickstart_run.log
    assert "inception_5b" in log and "aux2" in log  # Table 1 of the live model, aux heads on
    assert (quickstart_run.output_dir / "best.keras").is_file()
    written = {path.name for path in quickstart_run.export.iterdir()}
    assert written >= {*ARTEFACTS, "manifest.json", "variables"}
    assert re.search(r"^Quickstart finished in \d+ min \d+ s\.$", log, re.M), log[-2000:]


def test_verify_passes_every_artefact_on_the_runs_validation_images(quickstart_run):
    log = quickstart_run.log
    assert "on 1000 images from shapes/64px (validation split):" in log
    rows = verify_table(log)
    # The checkpoint first, as the reference, then one row per artefact, each within tolerance.
    assert rows[0][:2] == ["Keras (reference)", str(quickstart_run.checkpoint)], rows[0]
    assert rows[0][-1] == "reference"
    assert sorted(row[1] for row in rows[1:]) == sorted(
        ["saved_model.pb, variables/", *ARTEFACTS[1:]]
    )
    assert [row[-1] for row in rows[1:]] == ["ok"] * len(ARTEFACTS), rows
    accuracy = float(rows[0][5].rstrip("%")) / 100  # the "top-1 acc" column
    assert accuracy > 0.95, rows[0]  # it has learned: README gives 98% for this run
    assert re.search(r"^manifest\.json: every file's sha256 and size match\.$", log, re.M)
    assert re.search(r"^PASSED$", log, re.M)


def test_predict_names_the_new_images_as_the_checkpoint_does(quickstart_run):
    """The int8 TFLite model's top class for each sample, as printed, is the Keras checkpoint's,
    and nearly always the figure drawn (files are named by their class)."""
    printed = dict(
        re.findall(r"^runs/samples/(\d\d_\w+\.png)\n  1\. (\w+) ", quickstart_run.log, re.M)
    )
    samples = sorted(quickstart_run.samples.iterdir())
    assert sorted(printed) == [path.name for path in samples] and len(samples) == 6
    reference = predict(quickstart_run.checkpoint, [str(path) for path in samples], top_k=1)
    assert printed == {p.path.rsplit("/", 1)[1]: p.labels[0] for p in reference.predictions}
    right = [name for name, label in printed.items() if name[3:-4] == label]
    assert len(right) >= 5, printed

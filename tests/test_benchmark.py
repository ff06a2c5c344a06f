"""The benchmark's quick run end to end (a smoke test of every section; no speed is asserted)."""

import json

import pytest

from inception_keras import benchmark
from inception_keras.cli import main
from inception_keras.model import GoogLeNet, inference_model


def test_multiply_adds_match_the_paper_count():
    model = GoogLeNet(aux_logits=True)
    assert benchmark.multiply_adds(inference_model(model)) == 1_582_671_872  # Table 1 recomputed
    assert benchmark.multiply_adds(model) > 1_582_671_872  # + the two aux heads


@pytest.mark.slow
def test_quick_run_measures_every_section(tmp_path, capsys):
    output = tmp_path / "bench.json"
    # One run for every section, settings included (it shares the exported artefacts).
    assert (
        main(
            [
                "benchmark",
                "--quick",
                "--json",
                "--output",
                str(output),
                "--sections",
                "roofline,train,pipeline,inference,settings",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # stdout is only the JSON document
    assert report == json.loads(output.read_text())
    assert "Benchmarking" in captured.err
    assert report["config"]["quick"] and report["config"]["image_size"] == 64
    assert report["machine"]["cores"] >= 1 and report["machine"]["cpu"]
    assert report["roofline"]["float32"] > 1  # GFLOP/s

    macs = benchmark.multiply_adds(
        GoogLeNet(input_shape=(64, 64, 3), classes=1000, aux_logits=True)
    )
    feeds = {(r["precision"], r["xla"], r["feed"]) for r in report["train"]}
    assert feeds == {("float32", False, "in-memory"), ("float32", False, "tf.data JPEG")}
    for row in report["train"]:
        assert row["images_per_sec"] > 0
        assert row["gflops"] == pytest.approx(2 * 3 * macs * row["images_per_sec"] / 1e9)
        assert row["roofline_share"] == pytest.approx(row["gflops"] / report["roofline"]["float32"])
    assert report["pipeline"]["images_per_sec"] > 0
    assert report["pipeline"]["ratio_to_training"] == pytest.approx(
        report["pipeline"]["images_per_sec"] / max(r["images_per_sec"] for r in report["train"])
    )
    artefacts = [r["artefact"] for r in report["inference"]]
    assert artefacts == ["Keras", "SavedModel", "TFLite float32", "TFLite int8", "ONNX"]
    for row in report["inference"]:
        assert 0 < row["latency_ms"] <= row["latency_p90_ms"] and row["images_per_sec"] > 0
    names = [t["name"] for t in report["targets"]]
    assert any("pipeline" in n for n in names) and any("int8" in n for n in names)
    assert all(isinstance(t["met"], bool) for t in report["targets"])

    rows = report["settings"]
    groups = list(dict.fromkeys(r["group"] for r in rows))
    assert groups == ["ONNX", "TFLite float32", "TFLite int8", "train float32"]
    for group in groups:
        members = [r for r in rows if r["group"] == group]
        assert members[0]["setting"].startswith("default") and len(members) >= 3
        for row in members:
            assert row["images_per_sec"] > 0
            assert row["relative"] == pytest.approx(
                row["images_per_sec"] / members[0]["images_per_sec"]
            )
    settings = {r["setting"] for r in rows}
    assert {
        "steps_per_execution 4",
        "TF inter-op threads 1",
        "TF intra-op threads 1",
        "builtin kernels, no XNNPACK",
        "graph optimisation basic",
    } <= settings


def test_default_run_leaves_out_the_settings_sweep():
    config = benchmark.BenchmarkConfig().resolved()
    assert "settings" not in config.section_list()
    assert set(config.section_list()) == set(benchmark.SECTIONS) - {"settings"}


def test_bad_sections_are_a_clear_error(capsys):
    assert main(["benchmark", "--sections", "train,warp-drive"]) == 2
    assert "warp-drive" in capsys.readouterr().err

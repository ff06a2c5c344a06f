"""The benchmark: its goals checked on a hand-built report, and the quick run end to end (a smoke
test of every section; no speed is asserted)."""

import dataclasses
import json
import os
import re

import pytest

from inception_keras import benchmark
from inception_keras.benchmark.peer import load_peer
from inception_keras.benchmark.report import BenchmarkReport, targets
from inception_keras.cli import main
from inception_keras.errors import UsageError
from inception_keras.model import GoogLeNet, inference_model


def test_multiply_adds_match_the_paper_count():
    model = GoogLeNet(include_aux=True)
    assert benchmark.multiply_adds(inference_model(model)) == 1_582_671_872  # Table 1 recomputed
    assert benchmark.multiply_adds(model) > 1_582_671_872  # + the two aux heads


@pytest.mark.slow
def test_quick_run_measures_every_section(tmp_path, capsys, monkeypatch):
    output = tmp_path / "bench.json"
    # The settings sweep's training rows each start a Python process; the default row runs one
    # for real, the others are recorded (each is the same process with other variables, a
    # minute of the suite apiece) so that their environments can be checked.
    from inception_keras.benchmark import settings as settings_module

    real = settings_module.train_throughput_in_subprocess
    requested = []

    def train_in_subprocess(config, environment=None, steps_per_execution=1):
        requested.append((environment, steps_per_execution))
        if len(requested) == 1:
            return real(config, environment, steps_per_execution)
        return 10.0 * len(requested)

    monkeypatch.setattr(settings_module, "train_throughput_in_subprocess", train_in_subprocess)
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

    feeds = {(r["precision"], r["xla"], r["feed"]) for r in report["train"]}
    assert feeds == {
        ("float32", False, "in-memory"),
        ("float32", False, "tf.data JPEG"),
        ("float32", False, "plain Keras train_on_batch"),
    }
    for row in report["train"]:
        # At 64 px the network does 1/12.25 of the work at 224 ((224/64)^2, the 7x7 maps
        # become 2x2 - exact for every layer but the aux heads); training is 3 passes of 2 FLOPs
        # per multiply-add: between 3 * 2 * 1.58e9 / 12.25 and the same with generous aux heads.
        per_image = row["gflops"] / row["images_per_sec"]
        assert 0.77 < per_image < 0.95, per_image
    artefacts = [r["artefact"] for r in report["inference"]]
    assert artefacts == ["Keras", "SavedModel", "TFLite float32", "TFLite int8", "ONNX"]
    for row in report["inference"]:
        assert row["images_per_sec"] > 0 and row["latency_p90_ms"] >= row["latency_ms"] > 0
        # 2 x one image's multiply-adds over its latency; at 64 px every convolution does
        # 1/12.25 of its work at 224, the classifier (1024 x 1000) the same.
        per_image = row["latency_gflops"] * row["latency_ms"] / 1e3
        macs = (1_582_671_872 - 1024 * 1000) / 12.25 + 1024 * 1000
        assert per_image == pytest.approx(2 * macs / 1e9, rel=1e-6), per_image
        assert row["latency_roofline_share"] == pytest.approx(
            row["latency_gflops"] / report["roofline"]["float32"]
        )
    names = [t["name"] for t in report["targets"]]
    assert any("pipeline" in n for n in names) and any("int8" in n for n in names)

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
    assert settings & {"TF oneDNN kernels off", "TF oneDNN kernels on"}
    assert isinstance(report["machine"]["onednn"], bool)
    train_rows = [r["setting"] for r in rows if r["group"] == "train float32"]
    onednn = "1" if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0" else "0"
    assert list(zip(train_rows, requested)) == [
        ("default (TF threads = cores, steps_per_execution 1)", ({}, 1)),
        ("steps_per_execution 4", ({}, 4)),
        ("TF inter-op threads 1", ({"TF_NUM_INTEROP_THREADS": "1"}, 1)),
        ("TF intra-op threads 1", ({"TF_NUM_INTRAOP_THREADS": "1"}, 1)),
        (train_rows[4], ({"TF_ENABLE_ONEDNN_OPTS": onednn}, 1)),
    ]


def test_default_run_leaves_out_the_settings_sweep():
    config = benchmark.BenchmarkConfig().resolved()
    assert "settings" not in config.section_list()
    assert set(config.section_list()) == set(benchmark.SECTIONS) - {"settings"}


def test_bad_sections_are_a_clear_error(capsys):
    assert main(["benchmark", "--sections", "train,warp-drive"]) == 2
    assert "warp-drive" in capsys.readouterr().err


def test_goals_are_checked_on_the_reports_numbers():
    row = dict(precision="float32", xla=False, feed="in-memory", roofline_share=0.75)
    plain = dict(row, feed="plain Keras train_on_batch", roofline_share=None)
    bf16 = dict(row, precision="mixed_bfloat16", roofline_share=None)

    def rate(row, images_per_sec, **changes):  # a training step of 10 GFLOP per image
        return dict(row, images_per_sec=images_per_sec, gflops=10 * images_per_sec, **changes)

    report = BenchmarkReport(
        machine={},
        config={},
        roofline={"float32": 200.0, "bfloat16": 400.0},
        train=[
            rate(row, 10.0),
            rate(row, 18.0, roofline_share=0.9),  # the faster one counts
            rate(row, 30.0, xla=True),  # XLA rows are not compared
            rate(plain, 15.0),
            rate(bf16, 39.0),
            rate(bf16, 26.0, feed="plain Keras train_on_batch"),
        ],
        pipeline=dict(images_per_sec=30.0, ratio_to_training=2.5),
        inference=[
            # The roofline goal is batch-1's: the batch-32 shares do not count.
            dict(
                artefact="ONNX",
                latency_ms=14.0,
                latency_gflops=3.0 / 0.014,  # 3 GFLOP per image
                latency_roofline_share=0.93,
                roofline_share=0.8,
            ),
            dict(
                artefact="TFLite float32",
                latency_ms=18.0,
                latency_roofline_share=0.72,
                roofline_share=0.95,
            ),
            dict(
                artefact="TFLite int8", latency_ms=4.0, latency_roofline_share=3.3, roofline_share=4
            ),
        ],
        peer=dict(
            train=[
                dict(mode="eager float32", bfloat16=False, images_per_sec=12.0),
                dict(mode="channels_last float32", bfloat16=False, images_per_sec=15.0),
                dict(mode="channels_last + autocast bfloat16", bfloat16=True, images_per_sec=30.0),
            ],
            inference=[
                dict(mode="eager float32", bfloat16=False, latency_ms=30.0, images_per_sec=1.0),
                dict(mode="channels_last float32", bfloat16=False, latency_ms=28.0),
                dict(mode="channels_last + autocast bfloat16", bfloat16=True, latency_ms=20.0),
            ],
        ),
    )
    got = {(t["goal"], t["measured"]): t["met"] for t in targets(report)}
    assert got == {
        (">= 80%", "90% (fit)"): True,
        (">= 1.2x", "1.20x (fit; 18.0 vs 15.0 img/s, channels_last float32)"): True,
        (">= 1.3x", "1.30x (fit; 39.0 vs 30.0 img/s, channels_last + autocast bfloat16)"): True,
        (">= 1.2x", "1.00x (plain Keras; 15.0 vs 15.0 img/s, channels_last float32)"): False,
        (
            ">= 1.3x",
            "0.87x (plain Keras; 26.0 vs 30.0 img/s, channels_last + autocast bfloat16)",
        ): False,
        (">= 3x", "2.5x"): False,
        (">= 90%", "93% (ONNX)"): True,  # int8 is not an fp32 artefact
        # The fastest fp32 artefact (ONNX) against torchvision's fastest fp32 mode.
        (">= 2x", "2.00x (ONNX 14.00 vs 28.00 ms, channels_last float32)"): True,
        (">= 3x", "4.5x"): True,  # 18 / 4
    }
    # At 100% of the roofline, a ratio is the roofline over torchvision's GFLOP/s at our
    # operation count, whatever our own speed: 200 / (15 img/s x 10 GFLOP) in fp32 training,
    # 400 / (30 x 10) in bf16, 200 x 0.028 s / 3 GFLOP at batch 1.
    ceilings = [(t["goal"], t["ceiling"]) for t in targets(report) if t["ceiling"] is not None]
    assert ceilings == [
        (">= 1.2x", pytest.approx(4 / 3)),
        (">= 1.3x", pytest.approx(4 / 3)),
        (">= 1.2x", pytest.approx(4 / 3)),
        (">= 1.3x", pytest.approx(4 / 3)),
        (">= 2x", pytest.approx(200 * 0.028 / 3)),
    ]
    # No peer: only the goals this run can check on its own.
    alone = dataclasses.replace(report, peer={})
    assert [t["goal"] for t in targets(alone)] == [">= 80%", ">= 3x", ">= 90%", ">= 3x"]
    assert targets(BenchmarkReport(machine={}, config={})) == []
    text_report = dataclasses.replace(
        report,
        train=[],
        inference=[],
        machine=dict(
            cpu="c", cores=2, flags=[], gpus=[], versions={"tensorflow": "2"}, onednn=True
        ),
        config=dict(variant="paper", image_size=224, batch_size=32, repeats=5, warmup=2),
        targets=targets(report),
    )
    text = text_report.format()
    assert "Versions: tensorflow 2; TF oneDNN kernels on\n" in text
    assert re.search(r"outpaces the fastest training step +2\.5x +>= 3x +NO\n", text)
    assert re.search(r"channels_last float32 +15\.0 +28\.00 +-\n", text)  # the peer's table
    assert re.search(r"against torchvision's best fp32, batch-1 latency .* yes +1\.87x\n", text)
    assert "--variant slim compares like for like" in text
    slim = dataclasses.replace(text_report, config=dict(text_report.config, variant="slim"))
    assert "like for like" not in slim.format()
    # Without torchvision's figures there is no ceiling to show.
    alone_text = dataclasses.replace(text_report, peer={}, targets=targets(alone)).format()
    assert "at 100% of the roofline" not in alone_text
    assert re.search(r"outpaces the fastest training step +2\.5x +>= 3x +NO\n", alone_text)


@pytest.mark.slow
def test_a_peer_report_is_checked_when_read(tmp_path):
    bad = tmp_path / "peer.json"
    bad.write_text('{"train": [{"mode": "x"}], "inference": []}')
    assert main(["benchmark", "--peer", str(bad), "--sections", "roofline"]) == 2
    with pytest.raises(UsageError, match="not a report of peer_torchvision.py"):
        load_peer(bad)
    with pytest.raises(UsageError, match="not both"):
        benchmark.BenchmarkConfig(peer=str(bad), peer_python="python").resolved()

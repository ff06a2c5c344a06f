"""The benchmark's report: its tables, and the performance goals (:mod:`.goals`) checked on one
run's numbers."""

import dataclasses
import json

from inception_keras.benchmark.goals import GOALS


@dataclasses.dataclass
class BenchmarkReport:
    """Everything one :func:`run` measured; ``format()`` prints it, ``to_json()`` serialises it."""

    machine: dict
    config: dict
    roofline: dict = dataclasses.field(default_factory=dict)  # {"float32": GFLOP/s, ...}
    train: list = dataclasses.field(default_factory=list)
    pipeline: dict = dataclasses.field(default_factory=dict)
    inference: list = dataclasses.field(default_factory=list)
    settings: list = dataclasses.field(default_factory=list)
    peer: dict = dataclasses.field(default_factory=dict)  # benchmark/peer_torchvision.py's JSON
    targets: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def to_json(self):
        return dataclasses.asdict(self)

    def format(self):
        m = self.machine
        lines = [
            f"Machine: {m['cpu']}, {m['cores']} cores, flags {' '.join(m['flags']) or '-'}"
            f"{', GPUs ' + ', '.join(m['gpus']) if m['gpus'] else ', no GPU'}",
            "Versions: "
            + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
            + {True: "; TF oneDNN kernels on", False: "; TF oneDNN kernels off"}.get(
                m.get("onednn"), ""
            ),
            f"Model: GoogLeNet {self.config['variant']} variant, "
            f"{self.config['image_size']}x{self.config['image_size']}, 1000 classes, batch "
            f"{self.config['batch_size']}, medians of {self.config['repeats']} steps after "
            f"{self.config['warmup']} warm-up",
            "",
        ]
        if self.roofline:
            lines.append(
                "Roofline (matrix multiply, best of the run's start and end): "
                + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in self.roofline.items())
            )
            lines.append("")
        if self.train:
            lines += _table(
                ("training", "precision", "XLA", "feed", "img/s", "GFLOP/s", "% fp32 roofline"),
                [
                    (
                        "train",
                        r["precision"],
                        "on" if r["xla"] else "off",
                        r["feed"],
                        f"{r['images_per_sec']:.1f}",
                        f"{r['gflops']:.0f}",
                        _pct(r["roofline_share"]),
                    )
                    for r in self.train
                ],
            )
            lines.append("")
        if self.pipeline:
            p = self.pipeline
            lines.append(
                f"Input pipeline alone (JPEG decode, paper crop, distortions): "
                f"{p['images_per_sec']:.0f} img/s"
                + (
                    f" = {p['ratio_to_training']:.1f}x the fastest training step"
                    if p.get("ratio_to_training")
                    else ""
                )
            )
            lines.append("")
        if self.inference:
            lines += _table(
                (
                    "inference",
                    "batch-1 median ms",
                    "p90 ms",
                    "batch-1 % fp32 roofline",
                    f"batch-{self.config['batch_size']} img/s",
                    "GFLOP/s",
                    "% fp32 roofline",
                ),
                [
                    (
                        r["artefact"],
                        f"{r['latency_ms']:.2f}",
                        f"{r['latency_p90_ms']:.2f}",
                        _pct(r["latency_roofline_share"]),
                        f"{r['images_per_sec']:.1f}",
                        f"{r['gflops']:.0f}",
                        _pct(r["roofline_share"]),
                    )
                    for r in self.inference
                ],
            )
            lines.append("")
        if self.settings:
            lines += _table(
                (
                    "settings",
                    "setting",
                    "batch-1 ms",
                    f"batch-{self.config['batch_size']} img/s",
                    "vs default",
                ),
                [
                    (
                        r["group"],
                        r["setting"],
                        "-" if r["latency_ms"] is None else f"{r['latency_ms']:.2f}",
                        f"{r['images_per_sec']:.1f}",
                        f"{r['relative']:.2f}x",
                    )
                    for r in self.settings
                ],
            )
            lines.append("")
        if self.peer:
            peer = self.peer
            versions = ", ".join(f"{k} {v}" for k, v in peer.get("versions", {}).items())
            lines += _table(
                (f"peer ({versions})", "mode", "train img/s", "batch-1 ms", "batch img/s"),
                [
                    (
                        peer.get("peer", "peer"),
                        mode,
                        _fmt(_row(peer["train"], mode), "images_per_sec", "{:.1f}"),
                        _fmt(_row(peer["inference"], mode), "latency_ms", "{:.2f}"),
                        _fmt(_row(peer["inference"], mode), "images_per_sec", "{:.1f}"),
                    )
                    for mode in dict.fromkeys(r["mode"] for r in peer["train"] + peer["inference"])
                ],
            )
            lines.append("")
        if self.targets:
            # The ceiling column only where a goal against torchvision was measured.
            ceilings = any(t.get("ceiling") is not None for t in self.targets)
            header = ["target", "measured", "goal", "met"]
            rows = [
                [t["name"], t["measured"], t["goal"], "yes" if t["met"] else "NO"]
                for t in self.targets
            ]
            if ceilings:
                header.append("at 100% of the roofline")
                for row, t in zip(rows, self.targets):
                    row.append("" if t.get("ceiling") is None else f"{t['ceiling']:.2f}x")
            lines += _table(header, rows)
            if ceilings:
                lines.append(
                    "(at 100% of the roofline: the ratio against torchvision if this run's step "
                    "or call ran at the matrix-multiply rate; a goal above it needs fewer "
                    "operations, not faster ones)"
                )
            if self.peer and self.config.get("variant") != "slim":
                lines.append(
                    "torchvision's googlenet is the slim variant's architecture (batch norm, a "
                    '3x3 in the "5x5" branch, no LRN): --variant slim compares like for like.'
                )
            lines.append("")
        lines.append(f"Benchmark took {self.seconds:.0f} s.")
        return "\n".join(lines)


def _row(rows, mode):
    return next((r for r in rows if r["mode"] == mode), None)


def _fmt(row, key, form):
    return "-" if row is None or row.get(key) is None else form.format(row[key])


def _pct(value):
    return "-" if value is None else f"{value:.0%}"


def _table(header, rows):
    rows = [tuple(header)] + [tuple(r) for r in rows]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    text = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return [text[0], "  ".join("-" * w for w in widths)] + text[1:]


_FP32_ARTEFACTS_EXCLUDED = ("TFLite float16", "TFLite int8")


def targets(report):
    """The :data:`GOALS` this report has numbers for, as ``{name, measured, goal, met,
    ceiling}``; ``ceiling`` (goals against torchvision) is the ratio this run would reach at
    100% of the roofline, so a goal above it cannot be met by running the same operations faster.

    Training goals are checked for each way of training measured (``fit`` from memory, plain
    Keras ``train_on_batch``), so a speed-up has to hold for both.
    """

    def best(rows, key="images_per_sec", lowest=False, **match):
        found = [r for r in rows if all(r[k] == v for k, v in match.items())]
        return (min if lowest else max)(found, key=lambda r: r[key], default=None)

    measured = []  # (goal, value compared with its threshold, the value as text, detail, ceiling)
    peer = report.peer or {}

    def ceiling(ratio, gflops, roofline):
        rate = report.roofline.get(roofline)
        return ratio * rate / gflops if rate and gflops else None

    for feed in ("in-memory", "plain Keras train_on_batch"):
        way = "fit" if feed == "in-memory" else "plain Keras"
        fp32 = best(report.train, precision="float32", feed=feed, xla=False)
        if fp32 and fp32["roofline_share"] is not None and feed == "in-memory":
            measured.append(("fp32_training", fp32["roofline_share"], "{:.0%}", way, None))
        for precision, bfloat16, goal in (
            ("float32", False, "fp32_training_peer"),
            ("mixed_bfloat16", True, "bf16_training_peer"),
        ):
            ours = best(report.train, precision=precision, feed=feed, xla=False)
            theirs = best(peer.get("train", []), bfloat16=bfloat16)
            if ours and theirs:
                ratio = ours["images_per_sec"] / theirs["images_per_sec"]
                detail = (
                    f"{way}; {ours['images_per_sec']:.1f} vs {theirs['images_per_sec']:.1f} "
                    f"img/s, {theirs['mode']}"
                )
                roofline = "bfloat16" if bfloat16 else "float32"
                measured.append(
                    (goal, ratio, "{:.2f}x", detail, ceiling(ratio, ours.get("gflops"), roofline))
                )
    if report.pipeline.get("ratio_to_training"):
        measured.append(("pipeline", report.pipeline["ratio_to_training"], "{:.1f}x", None, None))
    fp32_inference = [
        r
        for r in report.inference
        if r["artefact"] not in _FP32_ARTEFACTS_EXCLUDED and r["latency_roofline_share"] is not None
    ]
    if fp32_inference:
        top = max(fp32_inference, key=lambda r: r["latency_roofline_share"])
        measured.append(
            ("fp32_inference", top["latency_roofline_share"], "{:.0%}", top["artefact"], None)
        )
    fastest = best(
        [r for r in report.inference if r["artefact"] not in _FP32_ARTEFACTS_EXCLUDED],
        key="latency_ms",
        lowest=True,
    )
    theirs = best(peer.get("inference", []), key="latency_ms", lowest=True, bfloat16=False)
    if fastest and theirs:
        ratio = theirs["latency_ms"] / fastest["latency_ms"]
        detail = (
            f"{fastest['artefact']} {fastest['latency_ms']:.2f} vs {theirs['latency_ms']:.2f} ms, "
            f"{theirs['mode']}"
        )
        limit = ceiling(ratio, fastest.get("latency_gflops"), "float32")
        measured.append(("fp32_inference_peer", ratio, "{:.2f}x", detail, limit))
    by_name = {r["artefact"]: r for r in report.inference}
    if "TFLite int8" in by_name and "TFLite float32" in by_name:
        speedup = by_name["TFLite float32"]["latency_ms"] / by_name["TFLite int8"]["latency_ms"]
        measured.append(("int8", speedup, "{:.1f}x", None, None))
    return [
        dict(
            name=GOALS[key][0],
            measured=form.format(value) + (f" ({detail})" if detail else ""),
            goal=GOALS[key][1],
            met=value >= GOALS[key][2],
            ceiling=limit,
        )
        for key, value, form, detail, limit in measured
    ]


def save_json(report, path):
    with open(path, "w") as f:
        json.dump(report.to_json(), f, indent=2)

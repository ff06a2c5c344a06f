"""The benchmark's report: its tables, and the performance goals checked on one run's numbers."""

import dataclasses
import json


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
    targets: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def to_json(self):
        return dataclasses.asdict(self)

    def format(self):
        m = self.machine
        lines = [
            f"Machine: {m['cpu']}, {m['cores']} cores, flags {' '.join(m['flags']) or '-'}"
            f"{', GPUs ' + ', '.join(m['gpus']) if m['gpus'] else ', no GPU'}",
            "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
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
                    f"batch-{self.config['batch_size']} img/s",
                    "GFLOP/s",
                    "% fp32 roofline",
                ),
                [
                    (
                        r["artefact"],
                        f"{r['latency_ms']:.2f}",
                        f"{r['latency_p90_ms']:.2f}",
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
        if self.targets:
            lines += _table(
                ("target", "measured", "goal", "met"),
                [
                    (t["name"], t["measured"], t["goal"], "yes" if t["met"] else "NO")
                    for t in self.targets
                ],
            )
            lines.append("")
        lines.append(f"Benchmark took {self.seconds:.0f} s.")
        return "\n".join(lines)


def _pct(value):
    return "-" if value is None else f"{value:.0%}"


def _table(header, rows):
    rows = [tuple(header)] + [tuple(r) for r in rows]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    text = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return [text[0], "  ".join("-" * w for w in widths)] + text[1:]


# torchvision GoogLeNet at its best CPU settings (channels_last, bf16 autocast) on a 2-vCPU
# AVX-512 machine, training at batch 32 - measured once elsewhere, not by this package (PyTorch
# is not a dependency).
TORCHVISION_BEST_BF16_TRAIN = 26.0

# The performance goals, each checked on one run's numbers: (name, goal as text, threshold).
GOALS = {
    "fp32_training": ("training fp32 reaches a share of the fp32 roofline", ">= 80%", 0.8),
    "bf16_training": (
        f"training bf16 against torchvision bf16 ({TORCHVISION_BEST_BF16_TRAIN:g} img/s, "
        "another CPU)",
        ">= 1.3x",
        1.3,
    ),
    "pipeline": ("the input pipeline outpaces the fastest training step", ">= 3x", 3.0),
    "fp32_inference": ("the best fp32 inference reaches a share of the roofline", ">= 90%", 0.9),
    "int8": ("TFLite int8 is faster than float32 at batch 1", ">= 3x", 3.0),
}


def targets(report):
    """The :data:`GOALS` this report has numbers for, as ``{name, measured, goal, met}``."""

    def best(rows, **match):
        rates = [r for r in rows if all(r[k] == v for k, v in match.items())]
        return max(rates, key=lambda r: r["images_per_sec"], default=None)

    measured = {}  # goal -> (value compared with its threshold, the value as text)
    fp32 = best(report.train, precision="float32", feed="in-memory")
    if fp32 and fp32["roofline_share"] is not None:
        measured["fp32_training"] = (fp32["roofline_share"], f"{fp32['roofline_share']:.0%}")
    bf16 = best(report.train, precision="mixed_bfloat16", feed="in-memory")
    if bf16:
        ratio = bf16["images_per_sec"] / TORCHVISION_BEST_BF16_TRAIN
        measured["bf16_training"] = (ratio, f"{ratio:.2f}x ({bf16['images_per_sec']:.1f} img/s)")
    if report.pipeline.get("ratio_to_training"):
        ratio = report.pipeline["ratio_to_training"]
        measured["pipeline"] = (ratio, f"{ratio:.1f}x")
    fp32_inference = [
        r
        for r in report.inference
        if r["artefact"] not in ("TFLite float16", "TFLite int8")
        and r["roofline_share"] is not None
    ]
    if fp32_inference:
        top = max(fp32_inference, key=lambda r: r["roofline_share"])
        share = top["roofline_share"]
        measured["fp32_inference"] = (share, f"{share:.0%} ({top['artefact']})")
    by_name = {r["artefact"]: r for r in report.inference}
    if "TFLite int8" in by_name and "TFLite float32" in by_name:
        speedup = by_name["TFLite float32"]["latency_ms"] / by_name["TFLite int8"]["latency_ms"]
        measured["int8"] = (speedup, f"{speedup:.1f}x")
    return [
        dict(name=GOALS[key][0], measured=text, goal=GOALS[key][1], met=value >= GOALS[key][2])
        for key, (value, text) in measured.items()
    ]


def save_json(report, path):
    with open(path, "w") as f:
        json.dump(report.to_json(), f, indent=2)

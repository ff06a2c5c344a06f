"""What the 1x1 reductions save: Table 1's network beside the one built from the paper's naive
modules (Figure 2(a), the ``"naive"`` variant), row by row, read off the two live models
(:func:`inception_keras.summary.summary_rows`), with AlexNet's size for scale.
"""

import dataclasses

from inception_keras.deprecation import renamed_arguments
from inception_keras.model import GoogLeNet
from inception_keras.summary import (
    PAPER_CLASSES,
    PAPER_INPUT_SIZE,
    UNITS,
    SummaryRow,
    format_count,
    summary_rows,
)

# The network the paper measures its size against ("12 times fewer parameters than the winning
# architecture of Krizhevsky et al. from two years ago"): AlexNet, Krizhevsky, Sutskever and Hinton,
# "ImageNet Classification with Deep Convolutional Neural Networks", NIPS 2012, the two-GPU network
# of that paper, whose abstract gives it "60 million parameters" (biases included; a round figure).
ALEXNET_PARAMS = 60_000_000
PAPER_ALEXNET_RATIO = 12


@dataclasses.dataclass
class ComparisonRow:
    """One row of Table 1 in both networks: (b) with 1x1 reductions and (a) naive."""

    name: str
    reduced: SummaryRow
    naive: SummaryRow

    def ratio(self, what):
        """naive / reduced for ``"params"`` or ``"ops"``."""
        return getattr(self.naive, what) / getattr(self.reduced, what)


@dataclasses.dataclass
class NaiveComparison:
    """Table 1's network (Figure 2(b) modules) beside the same network with naive modules
    (Figure 2(a)), as read off the two live models.

    Attributes:
        input_shape: the models' input shape.
        classes: the classifier's size.
        rows: a :class:`ComparisonRow` per row that has weights (conv1, conv2, the nine blocks,
            fc); the rows without weights (pools, LRN, dropout) are the same in both.
        reduced_parameters, naive_parameters: ``count_params()`` of each model (biases too).
    """

    input_shape: tuple
    classes: int
    rows: list
    reduced_parameters: int
    naive_parameters: int

    def total(self, network, what):
        """Sum of ``"params"`` or ``"ops"`` over the rows for ``"reduced"`` or ``"naive"``."""
        return sum(getattr(getattr(r, network), what) for r in self.rows)

    def ratio(self, what):
        """naive / reduced of the totals of ``"params"`` or ``"ops"``."""
        return self.total("naive", what) / self.total("reduced", what)

    def alexnet_ratio(self, network):
        """AlexNet's parameters / the ``"reduced"`` or ``"naive"`` network's (all parameters)."""
        return ALEXNET_PARAMS / getattr(self, f"{network}_parameters")


@renamed_arguments(input_size="image_size")
def compare_naive(image_size=PAPER_INPUT_SIZE, classes=PAPER_CLASSES):
    """Builds the ``"paper"`` and ``"naive"`` variants and sets their Table 1 rows side by side.

    Every figure is read off the two live models (:func:`summary_rows`, ``count_params``).
    Returns a :class:`NaiveComparison`; :func:`format_comparison` prints it.
    """
    shape = (image_size, image_size, 3)
    figures = {}
    for variant in ("paper", "naive"):
        model = GoogLeNet(input_shape=shape, classes=classes, variant=variant)
        figures[variant] = ({r.name: r for r in summary_rows(model)}, model.count_params())
        del model  # the naive network alone holds ~100M weights at 1000 classes
    (reduced, reduced_count), (naive, naive_count) = figures["paper"], figures["naive"]
    rows = [
        ComparisonRow(name, reduced[name], naive[name])
        for name in reduced
        if reduced[name].params or naive[name].params
    ]
    return NaiveComparison(shape, classes, rows, reduced_count, naive_count)


def _fmt_ratio(value):
    return f"{value:.2f}x"


def format_comparison(comparison):
    """The comparison as text: per row depth, weights and multiply-adds of both networks and
    naive / reduced, then the totals and the size against AlexNet's."""
    c = comparison
    headers = [
        "name",
        "depth (b)",
        "depth (a)",
        "weights (b)",
        "weights (a)",
        "(a)/(b)",
        "ops (b)",
        "ops (a)",
        "(a)/(b)",
    ]

    def cells(name, reduced_depth, naive_depth, figures):
        (rp, np_), (ro, no) = figures
        return [
            name,
            str(reduced_depth),
            str(naive_depth),
            format_count(rp, *UNITS["params"]),
            format_count(np_, *UNITS["params"]),
            _fmt_ratio(np_ / rp),
            format_count(ro, *UNITS["ops"]),
            format_count(no, *UNITS["ops"]),
            _fmt_ratio(no / ro),
        ]

    table = [
        cells(
            r.name,
            r.reduced.output[-1],
            r.naive.output[-1],
            [(r.reduced.params, r.naive.params), (r.reduced.ops, r.naive.ops)],
        )
        for r in c.rows
    ]
    totals = [(c.total("reduced", w), c.total("naive", w)) for w in ("params", "ops")]
    table.append(cells("total", "", "", totals))
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]

    def line(values):
        return "  ".join(
            v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths))
        ).rstrip()

    (reduced_params, naive_params), (reduced_ops, naive_ops) = totals
    text = [
        f"GoogLeNet, (b) with 1x1 reductions (Table 1) vs (a) naive modules (Figure 2): "
        f"input {c.input_shape}, {c.classes} classes",
        line(headers),
        line(["-" * w for w in widths]),
        *(line(row) for row in table[:-1]),
        line(["-" * w for w in widths]),
        line(table[-1]),
        "",
        "depth: output channels. weights: kernel weights, no biases (K = 1024). ops: "
        "multiply-adds (M = 10^6).",
        "Pools, LRN and dropout have no weights and are not counted.",
        f"(b) with reductions: {reduced_params:,} weights ({reduced_params / 1e6:.2f}M), "
        f"{reduced_ops:,} multiply-adds ({reduced_ops / 1e9:.2f}G)",
        f"(a) naive:           {naive_params:,} weights ({naive_params / 1e6:.2f}M), "
        f"{naive_ops:,} multiply-adds ({naive_ops / 1e9:.2f}G)",
        f"naive / reduced: {_fmt_ratio(c.ratio('params'))} the weights, "
        f"{_fmt_ratio(c.ratio('ops'))} the multiply-adds",
        f"AlexNet (Krizhevsky et al. 2012, its two-GPU network): {ALEXNET_PARAMS / 1e6:.0f}M "
        "parameters, as its abstract states.",
        f"AlexNet / (b): {_fmt_ratio(c.alexnet_ratio('reduced'))} ({c.reduced_parameters:,} "
        f"parameters, biases included; the paper says {PAPER_ALEXNET_RATIO}x)",
        f"AlexNet / (a): {_fmt_ratio(c.alexnet_ratio('naive'))} ({c.naive_parameters:,} "
        "parameters, biases included)",
    ]
    return "\n".join(text)


def print_comparison(comparison=None):
    """Prints :func:`format_comparison` (by default of :func:`compare_naive` at 224 pixels)."""
    print(format_comparison(comparison if comparison is not None else compare_naive()))

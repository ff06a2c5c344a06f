"""Table 1 of the paper, recomputed from a live model and set beside the published figures.

Params are weights (convolution and dense kernels, no biases or BatchNorm terms), ops are
multiply-adds, as in the paper. Every figure is read off the model's own layers (kernel shapes,
output shapes, filter counts), so the table describes the model that was built, not the config.

The paper counts params in K = 1024 (its linear row, 1024 x 1000 weights, reads "1000K") and ops
in M = 10^6. Its table is not fully consistent with its own channel counts; the summary prints
where and by how much, rather than adjusting anything.

The naive-module comparison built on these rows is :mod:`inception_keras.naive`.
"""

import dataclasses

import keras

from inception_keras.model import AUX_HEADS, LRN, TABLE_1, Conv, Inception, MaxPool

K, M = 1024, 1e6
UNITS = {"params": ("K", K), "ops": ("M", M)}  # how the paper prints each column
# Published params and ops per row of Table 1 (224x224 input, 1000 classes), as printed.
PAPER_FIGURES = {
    "conv1": ("2.7K", "34M"),
    "conv2": ("112K", "360M"),
    "inception_3a": ("159K", "128M"),
    "inception_3b": ("380K", "304M"),
    "inception_4a": ("364K", "73M"),
    "inception_4b": ("437K", "88M"),
    "inception_4c": ("463K", "100M"),
    "inception_4d": ("580K", "119M"),
    "inception_4e": ("840K", "170M"),
    "inception_5a": ("1072K", "54M"),
    "inception_5b": ("1388K", "71M"),
    "fc": ("1000K", "1M"),
}
PAPER_INPUT_SIZE, PAPER_CLASSES = 224, 1000
# A difference beyond this is reported in the notes under the table.
NOTE_THRESHOLD = 0.02
BRANCHES = ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool_proj")


@dataclasses.dataclass
class SummaryRow:
    """One line of the table."""

    name: str
    type: str
    patch: str = ""
    output: tuple = ()
    depth: int = 0
    filters: dict = dataclasses.field(default_factory=dict)  # Table 1's #1x1 ... pool proj
    params: int = 0
    ops: int = 0
    paper_params: str | None = None  # as printed in the paper, e.g. "159K"
    paper_ops: str | None = None
    training_only: bool = False
    naive: bool = False  # an inception block without its 1x1 reductions (Figure 2(a))

    def deviations(self):
        """{"params"|"ops": relative difference} where ours differs from the paper's figure by
        more than NOTE_THRESHOLD and by more than the paper's rounding."""
        out = {}
        for what, ours, printed in (
            ("params", self.params, self.paper_params),
            ("ops", self.ops, self.paper_ops),
        ):
            if printed is not None:
                paper, rounding = paper_figure(printed)
                if abs(ours - paper) > max(rounding, NOTE_THRESHOLD * paper):
                    out[what] = (ours - paper) / paper
        return out


def paper_figure(text):
    """A printed figure ("2.7K", "54M") as (value, half a unit of its last printed digit)."""
    number, unit = text[:-1], {"K": K, "M": M}[text[-1]]
    decimals = len(number.partition(".")[2])
    return float(number) * unit, 0.5 * 10**-decimals * unit


def _kernel_figures(layers):
    """(weights, multiply-adds) of the convolution and dense layers among ``layers``."""
    params = ops = 0
    for layer in layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            size = _prod(layer.kernel.shape)
            params += size
            positions = (
                _prod(layer.output.shape[1:-1]) if isinstance(layer, keras.layers.Conv2D) else 1
            )
            ops += size * positions
    return params, ops


def _prod(values):
    out = 1
    for v in values:
        out *= int(v)
    return out


def _layers_of(model, prefix):
    """The layers of one row, in model order: ``prefix`` itself and ``prefix_*``."""
    return [
        layer
        for layer in model.layers
        if layer.name == prefix or layer.name.startswith(prefix + "_")
    ]


def _row(model, name, type_, patch="", depth=0, filters=None, members=None):
    layers = members if members is not None else _layers_of(model, name)
    layers = sorted(set(layers), key=model.layers.index)
    if not layers:
        return None
    params, ops = _kernel_figures(layers)
    return SummaryRow(
        name=name,
        type=type_,
        patch=patch,
        output=tuple(layers[-1].output.shape[1:]),
        depth=depth,
        filters=filters or {},
        params=params,
        ops=ops,
    )


def _paper_rows(table):
    """Groups TABLE_1 into the paper's rows: a ``*_reduce`` convolution joins the one after it
    (the paper's conv2 row is a 1x1 reduce and a 3x3, depth 2)."""
    pending = []
    for spec in table:
        if isinstance(spec, Conv) and spec.name.endswith("_reduce"):
            pending.append(spec)
            continue
        yield pending + [spec]
        pending = []


def summary_rows(model):
    """The rows of Table 1 for ``model``, with the paper's figures where they are comparable.

    The paper's figures are for a 224x224 input and 1000 classes; at another input size the ops
    (and for ``fc`` another class count) are not comparable and are left out.
    """
    names = {layer.name for layer in model.layers}
    input_hw = tuple(model.inputs[0].shape[1:3])
    rows = []
    for group in _paper_rows(TABLE_1):
        spec = group[-1]
        if isinstance(spec, Conv):
            members = [layer for s in group for layer in _layers_of(model, s.name)]
            conv = model.get_layer(spec.name)
            filters = {}
            if len(group) == 2:
                filters = {
                    "3x3_reduce": model.get_layer(group[0].name).filters,
                    "3x3": conv.filters,
                }
            k, s = conv.kernel_size, conv.strides
            rows.append(
                _row(
                    model,
                    spec.name,
                    "convolution",
                    f"{k[0]}x{k[1]}/{s[0]}",
                    len(group),
                    filters,
                    members,
                )
            )
        elif isinstance(spec, MaxPool):
            pool = model.get_layer(spec.name)
            rows.append(
                _row(
                    model,
                    spec.name,
                    "max pool",
                    f"{pool.pool_size[0]}x{pool.pool_size[1]}/{pool.strides[0]}",
                )
            )
        elif isinstance(spec, LRN):
            if spec.name in names:
                rows.append(_row(model, spec.name, "local response norm"))
        elif isinstance(spec, Inception):
            filters = {
                b: model.get_layer(f"{spec.name}_{b}").filters
                for b in BRANCHES
                if f"{spec.name}_{b}" in names
            }
            naive = "3x3_reduce" not in filters
            row = _row(
                model,
                spec.name,
                f"{'naive ' if naive else ''}inception ({spec.name.split('_')[-1]})",
                depth=1 if naive else 2,
                filters=filters,
            )
            row.naive = naive
            rows.append(row)

    if "pool5" in names:
        pool_in = model.get_layer("pool5").input.shape
        kind = (
            "avg pool"
            if isinstance(model.get_layer("pool5"), keras.layers.GlobalAveragePooling2D)
            else "max pool"
        )
        rows.append(_row(model, "pool5", kind, f"{pool_in[1]}x{pool_in[2]}/1"))
    if "fc" in names:
        rate = model.get_layer("dropout").rate
        rows.append(_row(model, "dropout", f"dropout ({rate:.0%})"))
        rows.append(_row(model, "fc", "linear", depth=1))
        activation = model.get_layer("predictions").activation.__name__
        rows.append(_row(model, "predictions", activation))
    for head in AUX_HEADS:
        if head in names:
            row = _row(model, head, f"aux on {AUX_HEADS[head].split('_')[-1]}", depth=3)
            row.training_only = True
            rows.append(row)

    at_paper_size = input_hw == (PAPER_INPUT_SIZE, PAPER_INPUT_SIZE)
    for row in rows:
        if row.naive:
            # Table 1's figures are for the blocks with reductions; from a naive block on, every
            # layer also sees another input depth, so nothing after it is comparable.
            break
        if row.name in PAPER_FIGURES:
            paper_params, paper_ops = PAPER_FIGURES[row.name]
            classes_match = row.name != "fc" or row.output[-1] == PAPER_CLASSES
            if classes_match:
                row.paper_params = paper_params
                if at_paper_size:
                    row.paper_ops = paper_ops
    return rows


def format_count(value, unit, scale):
    if not value:
        return ""
    value /= scale
    return (
        f"{value:.2g}{unit}"
        if value < 1
        else f"{value:.1f}{unit}"
        if value < 100
        else f"{value:.0f}{unit}"
    )


def _delta(ours, printed):
    if printed is None or not ours:
        return ""
    paper = paper_figure(printed)[0]
    return f"{(ours - paper) / paper:+.1%}"


def format_summary(model, rows=None):
    """The table as text: our figures, the paper's, the differences, totals and notes."""
    rows = rows if rows is not None else summary_rows(model)
    headers = [
        "name",
        "type",
        "patch/stride",
        "output size",
        "depth",
        "#1x1",
        "#3x3 reduce",
        "#3x3",
        "#5x5 reduce",
        "#5x5",
        "pool proj",
        "params",
        "ops",
        "paper params",
        "paper ops",
        "Δ params",
        "Δ ops",
    ]
    cells = [
        [
            r.name,
            r.type + (" *" if r.training_only else ""),
            r.patch,
            "x".join("?" if d is None else str(d) for d in r.output),
            str(r.depth or ""),
            *(str(r.filters.get(b, "")) for b in BRANCHES),
            format_count(r.params, "K", K),
            format_count(r.ops, "M", M),
            r.paper_params or "",
            r.paper_ops or "",
            _delta(r.params, r.paper_params),
            _delta(r.ops, r.paper_ops),
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]

    def line(values):  # text columns left-aligned, numbers right-aligned
        return "  ".join(
            v.ljust(w) if i < 4 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths))
        ).rstrip()

    text = [
        f"{model.name}: input {tuple(model.inputs[0].shape[1:])}",
        line(headers),
        line(["-" * w for w in widths]),
    ]
    text += [line(c) for c in cells]

    inference = [r for r in rows if not r.training_only]
    aux = [r for r in rows if r.training_only]
    total_params, total_ops = sum(r.params for r in inference), sum(r.ops for r in inference)
    text += [
        "",
        f"Total (inference, no aux heads): {total_params:,} weights "
        f"({total_params / 1e6:.2f}M), {total_ops:,} multiply-adds ({total_ops / 1e9:.2f}G)",
    ]
    if aux:
        text.append(
            f"Aux heads (* training only): {sum(r.params for r in aux):,} weights, "
            f"{sum(r.ops for r in aux):,} multiply-adds"
        )
    text.append(f"All parameters (biases and BatchNorm included): {model.count_params():,}")

    notes = [(r, r.deviations()) for r in rows]
    notes = [
        f"  {r.name}: "
        + ", ".join(
            f"{what} {format_count(getattr(r, what), *UNITS[what])}"
            f" vs the paper's {getattr(r, 'paper_' + what)} ({rel:+.1%})"
            for what, rel in dev.items()
        )
        for r, dev in notes
        if dev
    ]
    if notes:
        text.append(
            f"Where the paper's Table 1 disagrees with the true counts of these layers by more "
            f"than {NOTE_THRESHOLD:.0%} and its rounding (its K is 1024, its M 10^6):"
        )
        text += notes
    if any(r.naive for r in rows):
        text.append(
            "Naive inception blocks (the paper's Figure 2(a)): Table 1's figures are for blocks "
            "with 1x1 reductions and are compared only for the layers before the first block."
        )
    if tuple(model.inputs[0].shape[1:3]) != (PAPER_INPUT_SIZE, PAPER_INPUT_SIZE):
        text.append(
            f"The paper's ops are for a {PAPER_INPUT_SIZE}x{PAPER_INPUT_SIZE} input and are not "
            "compared at this size."
        )
    return "\n".join(text)


def print_summary(model):
    """Prints :func:`format_summary` for ``model``."""
    print(format_summary(model))


_MOVED_TO_NAIVE = (
    "ALEXNET_PARAMS",
    "PAPER_ALEXNET_RATIO",
    "ComparisonRow",
    "NaiveComparison",
    "compare_naive",
    "format_comparison",
    "print_comparison",
)


def __getattr__(name):
    """The naive comparison's former home: its names stay importable from here."""
    if name in _MOVED_TO_NAIVE:
        from inception_keras import naive  # on first use: naive builds on this module

        return getattr(naive, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

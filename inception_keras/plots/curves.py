"""Training curves: a run's ``history.csv`` drawn per epoch.

Panels share the epoch axis (epochs counted from 1, as Keras' progress output counts them):
the loss of every head that has one (training solid, validation dashed), top-1 and top-5
accuracy of the main head, and the learning rate when the history logs it. The history holds the
rate at each epoch's end, so it is drawn there, half an epoch right of the epoch's number, and
not joined across the phases of a run that has several: a schedule that decays to zero shows 0
where the run or the phase ends, not as the rate its last epoch trained at. The best epoch -
the first with the highest validation top-1, the one ``best.keras`` holds - is marked by a
vertical line through every panel and a star on the validation top-1 curve.

A loss panel whose values span more than two decades is drawn on a logarithmic axis, and says
so. A column that is missing, entirely NaN or entirely zero is not drawn (a head that validation
does not score logs zeros), nor is a top-5 panel at 100% in every epoch (as it is by definition with
5 classes or fewer); the total ``loss`` is drawn only when the history has no per-head
losses, since it is a weighted sum of the drawn ones. The functions take plain numbers, the
``{column: [value per epoch]}`` dict of :func:`inception_keras.files.read_history`.
"""

import math
import os

import numpy as np
from matplotlib.ticker import MaxNLocator, PercentFormatter

from inception_keras.errors import UsageError
from inception_keras.files import BEST_MONITOR, CURVES_FILE, HISTORY_FILE, read_history
from inception_keras.plots import new_figure, save_png

MAIN_HEAD = "predictions"  # the classifier's output; aux heads add their own losses
LEARNING_RATE = "learning_rate"  # the column the training run logs
PHASE = "phase"  # the finetune recipe's: which of its two phases an epoch belongs to
TOP_K = (1, 5)
LEARNING_RATE_LABEL = "learning rate\nat epoch's end"
# A loss panel whose largest value is this many times its smallest gets a logarithmic axis.
LOG_SCALE_RATIO = 100
# Up to this many epochs each value gets a dot: a run of one epoch is a dot, not an empty panel.
_DOTTED_EPOCHS = 30
_VALIDATION = "val_"


def best_epoch(history, monitor=BEST_MONITOR):
    """The index of the first epoch with the highest ``monitor`` (validation top-1): the epoch
    ``best.keras`` was saved at, which keeps the first of equal scores. ``None`` without one."""
    values = np.asarray(history.get(monitor, []), dtype=float)
    if not values.size or np.all(np.isnan(values)):
        return None
    return int(np.nanargmax(values))


def plot_history(history, title=None):
    """One run's curves: a :class:`~matplotlib.figure.Figure` (see the module docstring)."""
    return _draw([(None, history)], title)


def compare_histories(histories, title=None):
    """Several runs overlaid, one colour per run, named in the legends: ``{name: history}``.

    Overlaid rather than side by side: on shared axes a gap between two runs reads directly,
    where separate panels would need equal scales and the eye to jump between them. To keep
    the panels legible only the main head's loss is drawn.
    """
    if not histories:
        raise UsageError("`histories` is empty: nothing to draw.")
    return _draw(list(histories.items()), title)


def plot_runs(run_dirs, output=None):
    """Draws the ``history.csv`` of one or several run folders and writes the PNG atomically.

    One run: :func:`plot_history`, by default into ``RUN_DIR/curves.png`` (the file training
    keeps up to date). Several: :func:`compare_histories`, named by their folders; ``output`` is
    then required, so that no run's own ``curves.png`` is replaced by a comparison.
    Returns the path written.
    """
    run_dirs = [os.fspath(d) for d in run_dirs]
    if not run_dirs:
        raise UsageError("`run_dirs` is empty: give at least one run folder.")
    if output is None:
        if len(run_dirs) > 1:
            raise UsageError(
                "comparing several runs needs `output` (--output PATH.png): the picture belongs "
                "to none of their folders."
            )
        output = os.path.join(run_dirs[0], CURVES_FILE)
    output = os.fspath(output)
    if not output.lower().endswith(".png"):
        raise UsageError(f"`output` {output!r} must be a .png file.")
    histories = {name: _read_run(d) for name, d in zip(_run_names(run_dirs), run_dirs)}
    if len(histories) == 1:
        ((name, history),) = histories.items()
        figure = plot_history(history, title=name)
    else:
        figure = compare_histories(histories)
    return save_png(figure, output)


def _read_run(run_dir):
    if not os.path.isdir(run_dir):
        raise UsageError(f"run folder {run_dir!r} does not exist or is not a folder.")
    path = os.path.join(run_dir, HISTORY_FILE)
    if not os.path.isfile(path):
        raise UsageError(
            f"{run_dir!r} has no {HISTORY_FILE}: not a training run's folder, or its first "
            "epoch has not finished."
        )
    try:
        history = read_history(path)
    except ValueError as error:
        raise UsageError(f"{path!r} is not a training history: {error}") from None
    if not history.get("epoch"):
        raise UsageError(f"{path!r} holds no finished epoch: nothing to draw.")
    return history


def _run_names(run_dirs):
    """The folders' names; where two share a name, as many trailing path parts as tell them
    apart (``a/run``, ``b/run``)."""
    paths = [os.path.abspath(d) for d in run_dirs]
    if len(set(paths)) < len(paths):
        raise UsageError(f"a run folder is given twice: {run_dirs}.")
    parts = [p.split(os.sep) for p in paths]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return paths


def _series(history, column):
    """The column as floats, or ``None`` when it is missing, all NaN or all zero."""
    values = np.asarray(history.get(column, []), dtype=float)
    finite = values[~np.isnan(values)]
    if not finite.size or not np.any(finite):
        return None
    return values


def _heads(history, compare):
    """``[(label, loss column)]`` of the heads with a loss, training or validation: the main head
    first; the total ``loss`` when there is no per-head one."""
    heads = {
        (c[len(_VALIDATION) :] if c.startswith(_VALIDATION) else c)[: -len("_loss")]
        for c in history
        if c.endswith("_loss")
    } - {""}
    if not heads:
        return [("", "loss")]
    heads = sorted(heads, key=lambda head: (head != MAIN_HEAD, head))
    if compare:  # the main head only: the panel says so, the legend names the runs
        return [("", f"{heads[0]}_loss")]
    return [("main" if h == MAIN_HEAD else h, f"{h}_loss") for h in heads]


def _panels(history, compare):
    """``[(y label, [(label, column, colour index)])]`` of the panels the history can fill."""
    loss = [(label, column, i) for i, (label, column) in enumerate(_heads(history, compare))]
    panels = [("main-head loss" if compare else "loss", loss)]
    panels += [(f"top-{k}", [("", f"{MAIN_HEAD}_top{k}", 0)]) for k in TOP_K]
    panels.append((LEARNING_RATE_LABEL, [("", LEARNING_RATE, 0)]))
    return panels


def _lines(runs, series, compare):
    """``[(run index, colour index, line style, label, values)]`` of one panel's series: training
    solid, validation dashed, the drawable ones only."""
    lines = []
    for run_index, (name, history) in enumerate(runs):
        for label, column, colour in series:
            if column == LEARNING_RATE:  # the one series that is not per split
                parts = [("", "-", "" if compare else "learning rate")]
            else:
                parts = [("", "-", "train"), (_VALIDATION, "--", "validation")]
            for prefix, style, split in parts:
                values = _series(history, prefix + column)
                if values is not None:
                    text = " ".join(p for p in (name, label, split) if p)
                    lines.append((run_index, run_index if compare else colour, style, text, values))
    return lines


def _split_at_phases(x, values, history):
    """``x`` and ``values`` with a NaN between epochs of different phases, where a line breaks."""
    phases = np.asarray(history.get(PHASE, []), dtype=float)
    if len(phases) != len(x):
        return x, values
    changes = (phases[1:] != phases[:-1]) & np.isfinite(phases[1:]) & np.isfinite(phases[:-1])
    breaks = np.flatnonzero(changes) + 1
    return np.insert(x, breaks, np.nan), np.insert(values, breaks, np.nan)


def _spans_decades(lines, ratio=LOG_SCALE_RATIO):
    """Whether the panel's values are all positive and the largest is over ``ratio`` times the
    smallest."""
    values = np.concatenate([values for *_, values in lines])
    values = values[~np.isnan(values)]
    return bool(values.size) and values.min() > 0 and values.max() > ratio * values.min()


def _all_perfect(lines):
    """Whether every value of the panel's lines is 1 (100%), NaN gaps aside."""
    return all(np.all(values[~np.isnan(values)] == 1.0) for *_, values in lines)


def _draw(runs, title):
    for name, history in runs:
        if not history.get("epoch"):
            where = f"run {name!r}" if name is not None else "`history`"
            raise UsageError(f"{where} has no epoch: nothing to draw.")
    compare = runs[0][0] is not None
    # The panels any run fills, in a fixed order; a panel no run has data for is left out.
    columns = {column: values for _, history in runs for column, values in history.items()}
    drawn = [
        (ylabel, lines)
        for ylabel, series in _panels(columns, compare)
        if (lines := _lines(runs, series, compare))
        and not (ylabel.startswith("top-") and ylabel != "top-1" and _all_perfect(lines))
    ]
    if not drawn:
        raise UsageError("the history has no column to draw (no loss, accuracy or learning rate).")

    epochs = max(len(history["epoch"]) for _, history in runs)
    heights = [1.0 if ylabel == LEARNING_RATE_LABEL else 1.6 for ylabel, _ in drawn]
    figure = new_figure(9, 0.8 + 1.6 * sum(heights))
    axes = figure.subplots(len(drawn), 1, sharex=True, height_ratios=heights, squeeze=False)[:, 0]
    marker = "o" if epochs <= _DOTTED_EPOCHS else None
    x_of = {name: np.asarray(history["epoch"], dtype=float) + 1 for name, history in runs}
    for ax, (ylabel, lines) in zip(axes, drawn):
        rate = ylabel == LEARNING_RATE_LABEL
        for run_index, colour, style, text, values in lines:
            x = x_of[runs[run_index][0]]
            if rate:  # at each epoch's end, and not joined across phases (each has its schedule)
                x, values = _split_at_phases(x + 0.5, values, runs[run_index][1])
            # Unclipped: the last epoch's end is the axis' right edge.
            ax.plot(
                x,
                values,
                style,
                color=f"C{colour}",
                label=text,
                marker=marker,
                ms=4,
                clip_on=not rate,
            )
        if "loss" in ylabel and _spans_decades(lines):
            # On a linear axis one far larger epoch (an untrained BatchNorm network's first
            # validation can score hundreds), or a long run's first epochs, flatten the rest.
            ax.set_yscale("log")
            ylabel = f"{ylabel} (log scale)"
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if ylabel.startswith("top-"):
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        if rate:
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    _mark_best(runs, axes, [ylabel for ylabel, _ in drawn], compare, x_of)
    if not compare:
        _mark_phases(*runs[0], axes, x_of)
    for ax in axes:  # a legend where it tells something: not for one run's learning rate
        if compare or len([line for line in ax.lines if not line.get_label().startswith("_")]) > 1:
            ax.legend(loc="best", fontsize="small", ncols=2 if compare else 1)
    last = axes[-1]
    last.set_xlabel("epoch")
    last.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    # Half an epoch of margin around a few epochs' dots; a long run starts at its first epoch.
    # Both end at the last epoch's end, where its learning rate is drawn.
    last.set_xlim(*((0.5, epochs + 0.5) if epochs <= _DOTTED_EPOCHS else (1, epochs + 0.5)))
    if title is None and compare:
        title = " vs ".join(name for name, _ in runs)
    if title:
        figure.suptitle(title)
    return figure


def _mark_phases(name, history, axes, x_of):
    """A run of several phases (the ``finetune`` recipe's ``phase`` column): every phase after
    the first shaded on each panel, and each phase named at its first epoch in the top panel."""
    phases = [int(p) for p in history.get(PHASE, []) if math.isfinite(p)]
    if len(set(phases)) < 2 or len(phases) != len(x_of[name]):
        return
    x = x_of[name]
    for number in sorted(set(phases)):
        epochs = [xi for xi, p in zip(x, phases) if p == number]
        start, end = min(epochs) - 0.5, max(epochs) + 0.5
        if number != phases[0]:
            for ax in axes:
                ax.axvspan(start, end, color="0.92", zorder=0)
        axes[0].text(
            start,
            0.98,
            f" phase {number}",
            transform=axes[0].get_xaxis_transform(),
            va="top",
            fontsize="small",
            color="0.3",
        )


def _mark_best(runs, axes, ylabels, compare, x_of):
    """A vertical line through every panel and a star on validation top-1 at each best epoch."""
    top1 = axes[ylabels.index("top-1")] if "top-1" in ylabels else None
    for run_index, (name, history) in enumerate(runs):
        best = best_epoch(history)
        if best is None:
            continue
        x = x_of[name][best]
        colour = f"C{run_index}" if compare else "0.4"
        for ax in axes:
            ax.axvline(x, color=colour, linestyle=":", linewidth=1)
        score = history[BEST_MONITOR][best]
        label = f"best: epoch {int(x)}, {score:.2%}" if math.isfinite(score) else "best"
        if top1 is not None:
            top1.plot(
                [x],
                [score],
                "*",
                color=f"C{run_index}",
                ms=12,
                markeredgecolor="black",
                label=" ".join(p for p in (name, label) if p),
            )

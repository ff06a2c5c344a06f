"""Training curves: what each figure plots, read back from matplotlib, against a history written
here by hand; the ``plot`` command."""

import csv
import math
import os

import numpy as np
import pytest
from _pictures import curves_pixels, pixels
from matplotlib.image import imread

from inception_keras.cli import main
from inception_keras.errors import UsageError
from inception_keras.files import read_history
from inception_keras.plots.curves import (
    LEARNING_RATE_LABEL,
    best_epoch,
    compare_histories,
    plot_history,
    plot_runs,
)

# Three epochs of a run, typed in. Validation top-1 ties at epoch indices 1 and 2: best.keras
# keeps the first, so the best epoch is the second (x = 2 on the 1-based axis). Validation
# scores no aux head (zeros), and val_loss / loss are the main head's / the weighted total.
HISTORY = {
    "epoch": [0.0, 1.0, 2.0],
    "loss": [3.0, 2.0, 1.5],
    "predictions_loss": [2.0, 1.25, 1.0],
    "aux1_loss": [2.5, 1.5, 1.25],
    "aux2_loss": [2.25, 1.75, 1.5],
    "val_loss": [1.75, 1.5, 1.25],
    "val_predictions_loss": [1.75, 1.5, 1.25],
    "val_aux1_loss": [0.0, 0.0, 0.0],
    "val_aux2_loss": [0.0, 0.0, 0.0],
    "predictions_top1": [0.25, 0.5, 0.625],
    "val_predictions_top1": [0.375, 0.75, 0.75],
    "predictions_top5": [0.5, 0.875, 1.0],
    "val_predictions_top5": [0.625, 1.0, 1.0],
    "images_per_sec": [100.0, 120.0, 121.0],
    "learning_rate": [3e-3, 1.5e-3, 0.0],
}
EPOCHS_X = [1.0, 2.0, 3.0]


def panels(figure):
    """``{y label: {line label: (x, y)}}`` of the figure's axes (colour bars excluded)."""
    return {
        ax.get_ylabel(): {
            line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
            for line in ax.get_lines()
        }
        for ax in figure.axes
    }


def best_lines(ax):
    """x of the vertical best-epoch lines of an axes (axvline: x = [x, x], y = [0, 1])."""
    return [
        line.get_xdata()[0]
        for line in ax.get_lines()
        if line.get_label().startswith("_") and list(line.get_ydata()) == [0, 1]
    ]


def write_history(path, history):
    os.makedirs(path, exist_ok=True)
    columns = list(history)
    with open(os.path.join(path, "history.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(zip(*(history[c] for c in columns)))


def test_curves_plot_exactly_the_histories_numbers():
    figure = plot_history(HISTORY, title="run")
    drawn = panels(figure)
    assert list(drawn) == ["loss", "top-1", "top-5", LEARNING_RATE_LABEL]
    loss = {k: v for k, v in drawn["loss"].items() if not k.startswith("_")}
    # Every head's training loss, the main head's validation loss; the validation aux heads
    # (all zeros), the total and val_loss (a copy of the main head's) are not drawn.
    assert loss == {
        "main train": (EPOCHS_X, HISTORY["predictions_loss"]),
        "main validation": (EPOCHS_X, HISTORY["val_predictions_loss"]),
        "aux1 train": (EPOCHS_X, HISTORY["aux1_loss"]),
        "aux2 train": (EPOCHS_X, HISTORY["aux2_loss"]),
    }
    for k in (1, 5):
        assert drawn[f"top-{k}"]["train"] == (EPOCHS_X, HISTORY[f"predictions_top{k}"])
        assert drawn[f"top-{k}"]["validation"] == (EPOCHS_X, HISTORY[f"val_predictions_top{k}"])
    # The rate each epoch ends with, at its end: the last epoch's 0 is where the run stops.
    ends = [x + 0.5 for x in EPOCHS_X]
    assert drawn[LEARNING_RATE_LABEL]["learning rate"] == (ends, HISTORY["learning_rate"])
    assert figure.axes[-1].get_xlim() == (0.5, 3.5)
    # The best epoch: the first of the tied validation top-1 maxima, marked in every panel.
    assert best_epoch(HISTORY) == 1
    assert drawn["top-1"]["best: epoch 2, 75.00%"] == ([2.0], [0.75])
    assert [best_lines(ax) for ax in figure.axes] == [[2.0]] * 4
    assert figure.get_suptitle() == "run"
    # A legend on each panel naming what it shows (the learning rate alone needs none).
    assert [ax.get_legend() is not None for ax in figure.axes] == [True, True, True, False]


def test_a_two_phase_run_shades_its_second_phase_and_names_both():
    """The finetune recipe's history: a ``phase`` column, 1 for three epochs, then 2 for two."""
    history = {
        "epoch": [0.0, 1.0, 2.0, 3.0, 4.0],
        "loss": [2.0, 1.5, 1.25, 1.0, 0.875],
        "predictions_top1": [0.25, 0.5, 0.625, 0.75, 0.875],
        "val_predictions_top1": [0.375, 0.75, 0.75, 0.875, 0.875],
        "phase": [1.0, 1.0, 1.0, 2.0, 2.0],
        "learning_rate": [2e-3, 1e-3, 0.0, 1e-4, 0.0],  # each phase decays to zero
    }
    figure = plot_history(history)
    # The rate at each epoch's end, the line broken between the phases.
    x, rate = panels(figure)[LEARNING_RATE_LABEL]["learning rate"]
    assert x[:3] + x[4:] == [1.5, 2.5, 3.5, 4.5, 5.5] and math.isnan(x[3])
    assert rate[:3] + rate[4:] == history["learning_rate"] and math.isnan(rate[3])
    for ax in figure.axes:
        (span,) = ax.patches  # axvspan: a rectangle from x to x + width over the whole height
        assert (span.get_x(), span.get_x() + span.get_width()) == (3.5, 5.5)
    assert not any("phase" in str(lines) for lines in panels(figure).values())  # not a curve
    top = figure.axes[0]
    assert sorted((t.get_text().strip(), t.get_position()[0]) for t in top.texts) == [
        ("phase 1", 0.5),
        ("phase 2", 3.5),
    ]
    # Epochs of no recorded phase (NaN) break no line: only a known change of phase does.
    gaps = panels(plot_history(dict(history, phase=[1.0, math.nan, math.nan, 2.0, 2.0])))
    assert gaps[LEARNING_RATE_LABEL]["learning rate"] == (
        [1.5, 2.5, 3.5, 4.5, 5.5],
        history["learning_rate"],
    )
    one_phase = plot_history(dict(history, phase=[1.0] * 5))
    assert not any(ax.patches or ax.texts for ax in one_phase.axes)
    assert not any(ax.patches or ax.texts for ax in plot_history(HISTORY).axes)


def test_curves_leave_out_missing_and_all_zero_columns():
    history = {
        "epoch": [0.0, 1.0],
        "loss": [2.0, 1.0],  # no per-head losses: the total is the loss drawn
        "val_loss": [0.0, 0.0],
        "predictions_top1": [0.5, float("nan")],  # a gap, still drawn
        "val_predictions_top1": [float("nan"), float("nan")],
    }
    drawn = panels(plot_history(history))
    assert list(drawn) == ["loss", "top-1"]  # no top-5, no learning rate: no panel
    assert {k for k in drawn["loss"] if not k.startswith("_")} == {"train"}
    assert drawn["loss"]["train"] == ([1.0, 2.0], [2.0, 1.0])
    x, y = drawn["top-1"]["train"]
    assert x == [1.0, 2.0] and y[0] == 0.5 and math.isnan(y[1])
    assert best_epoch(history) is None and "validation" not in drawn["top-1"]
    with pytest.raises(UsageError, match="no column"):
        plot_history({"epoch": [0.0], "images_per_sec": [5.0]})
    with pytest.raises(UsageError, match="no epoch"):
        plot_history({"epoch": []})


def test_a_loss_spanning_decades_is_drawn_on_a_log_axis():
    """An untrained BatchNorm network's first validation loss (890) beside losses near 1."""
    spiked = dict(HISTORY, val_predictions_loss=[890.0, 1.5, 1.25])
    figure = plot_history(spiked)
    loss = figure.axes[0]
    assert (loss.get_ylabel(), loss.get_yscale()) == ("loss (log scale)", "log")
    assert panels(figure)["loss (log scale)"]["main validation"] == (EPOCHS_X, [890.0, 1.5, 1.25])
    assert plot_history(HISTORY).axes[0].get_yscale() == "linear"  # 2.5 / 1: one decade or less
    # The bound: a largest value 100 times the smallest is still linear, just over it is not.
    for largest, scale in ((100.0, "linear"), (100.5, "log")):
        history = dict(HISTORY, val_predictions_loss=[largest, 1.5, 1.25])
        assert plot_history(history).axes[0].get_yscale() == scale
    compared = compare_histories({"spiked": spiked, "plain": HISTORY})
    assert compared.axes[0].get_ylabel() == "main-head loss (log scale)"


def test_a_top_k_panel_at_100_percent_throughout_is_left_out():
    """Four classes: top-5 is 100% in every epoch by definition, a flat line that says nothing."""
    four = dict(HISTORY, predictions_top5=[1.0] * 3, val_predictions_top5=[1.0, float("nan"), 1.0])
    assert list(panels(plot_history(four))) == ["loss", "top-1", LEARNING_RATE_LABEL]
    # One epoch below 100%, in one split or in one run of several: drawn.
    once = dict(four, val_predictions_top5=[1.0, 0.875, 1.0])
    assert "top-5" in panels(plot_history(once))
    assert "top-5" in panels(compare_histories({"four": four, "once": once}))
    assert "top-5" not in panels(compare_histories({"a": four, "b": four}))
    # Top-1 stays, however perfect: it carries the best epoch's star.
    perfect = dict(four, predictions_top1=[1.0] * 3, val_predictions_top1=[1.0] * 3)
    drawn = panels(plot_history(perfect))
    assert list(drawn) == ["loss", "top-1", LEARNING_RATE_LABEL]
    assert drawn["top-1"]["best: epoch 1, 100.00%"] == ([1.0], [1.0])


@pytest.mark.parametrize("epochs", [1, 250])
def test_curves_have_integer_epoch_ticks_with_one_epoch_and_with_250(epochs):
    rng = np.random.default_rng(epochs)
    history = {
        "epoch": [float(e) for e in range(epochs)],
        "predictions_loss": list(rng.uniform(0.5, 2, epochs)),
        "val_predictions_top1": list(rng.uniform(0, 1, epochs)),
    }
    figure = plot_history(history)
    figure.canvas.draw()
    ax = figure.axes[-1]
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    assert ticks and all(t == int(t) for t in ticks)
    assert low <= 1 and high >= epochs
    if epochs == 1:
        assert ticks == [1.0]
        assert ax.get_lines()[0].get_marker() == "o"  # one epoch is a visible dot
    else:
        assert 4 <= len(ticks) <= 12
        assert ax.get_lines()[0].get_marker() == "None"
    best = int(np.argmax(history["val_predictions_top1"]))
    assert best_lines(figure.axes[0]) == [best + 1]


def test_several_runs_are_overlaid_one_colour_per_run():
    shorter = {k: v[:2] for k, v in HISTORY.items()}
    shorter["val_predictions_top1"] = [0.5, 0.625]  # best: its second epoch
    figure = compare_histories({"sgd": HISTORY, "adamw": shorter})
    drawn = panels(figure)
    assert list(drawn) == ["main-head loss", "top-1", "top-5", LEARNING_RATE_LABEL]
    loss = {k: v for k, v in drawn["main-head loss"].items() if not k.startswith("_")}
    assert (
        loss
        == {  # the main head only
            "sgd train": (EPOCHS_X, HISTORY["predictions_loss"]),
            "sgd validation": (EPOCHS_X, HISTORY["val_predictions_loss"]),
            "adamw train": (EPOCHS_X[:2], HISTORY["predictions_loss"][:2]),
            "adamw validation": (EPOCHS_X[:2], HISTORY["val_predictions_loss"][:2]),
        }
    )
    assert drawn["top-1"]["sgd best: epoch 2, 75.00%"] == ([2.0], [0.75])
    assert drawn["top-1"]["adamw best: epoch 2, 62.50%"] == ([2.0], [0.625])
    colours = {
        line.get_label(): line.get_color()
        for ax in figure.axes
        for line in ax.get_lines()
        if not line.get_label().startswith("_")
    }
    assert {c for label, c in colours.items() if label.startswith("sgd")} == {"C0"}
    assert {c for label, c in colours.items() if label.startswith("adamw")} == {"C1"}
    assert figure.get_suptitle() == "sgd vs adamw"


@pytest.mark.slow
def test_plot_command_draws_one_or_several_runs(tmp_path, capsys):
    shorter = {k: v[:2] for k, v in HISTORY.items()}
    write_history(tmp_path / "a" / "run", HISTORY)
    write_history(tmp_path / "b" / "run", shorter)  # the same name: named a/run and b/run
    assert main(["plot", str(tmp_path / "a" / "run")]) == 0
    single = tmp_path / "a" / "run" / "curves.png"
    assert f"Wrote {single}" in capsys.readouterr().out
    history = read_history(single.parent / "history.csv")
    np.testing.assert_array_equal(imread(single), curves_pixels(history, single.parent))

    runs = [str(tmp_path / "a" / "run"), str(tmp_path / "b" / "run")]
    output = tmp_path / "both.png"
    assert main(["plot", *runs, "--output", str(output)]) == 0
    expected = compare_histories({"a/run": HISTORY, "b/run": shorter})
    np.testing.assert_array_equal(imread(output), pixels(expected))
    assert not (tmp_path / "b" / "run" / "curves.png").exists()


def test_plot_command_refuses_bad_runs_in_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    write_history(tmp_path / "header_only", {"epoch": [], "loss": []})
    write_history(tmp_path / "ok", HISTORY)
    cases = [
        ([str(tmp_path / "empty")], "has no history.csv"),
        ([str(tmp_path / "missing")], "does not exist"),
        ([str(tmp_path / "header_only")], "holds no finished epoch"),
        ([str(tmp_path / "ok"), str(tmp_path / "header_only"), "--output", "x.png"], "no finished"),
        ([str(tmp_path / "ok"), str(tmp_path / "empty")], "needs `output`"),
        ([str(tmp_path / "ok"), "--output", str(tmp_path / "x.pdf")], "must be a .png"),
    ]
    for argv, message in cases:
        assert main(["plot", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("inception-keras plot: error: ") and message in err, err
        assert err.count("\n") == 1
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "ok" / "curves.png").exists()
    with pytest.raises(UsageError, match="given twice"):
        plot_runs([tmp_path / "ok", tmp_path / "ok" / "."], tmp_path / "x.png")

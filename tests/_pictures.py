"""Pictures as the product renders them, decoded, for tests that check which data a written
PNG shows: the same figure drawn from the expected data must give the same pixels."""

import io
import os

from matplotlib.image import imread

from inception_keras.files import CURVES_FILE, read_history
from inception_keras.plots import DPI
from inception_keras.plots.curves import plot_history


def pixels(figure):
    """The figure rendered as ``inception_keras.plots.save_png`` renders it, decoded."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    buffer.seek(0)
    return imread(buffer)


def curves_pixels(history, run_dir):
    """The curves a run folder's ``curves.png`` shows when it is drawn from ``history``."""
    return pixels(plot_history(history, title=os.path.basename(os.path.abspath(run_dir))))


def written_curves(run_dir):
    """``(history.csv's history, curves.png decoded)`` of a run folder as they are now."""
    return read_history(os.path.join(run_dir, "history.csv")), imread(
        os.path.join(run_dir, CURVES_FILE)
    )

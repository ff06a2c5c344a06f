"""The pictures the product draws: matplotlib figures rendered headless, written atomically.

Figures are built with :class:`matplotlib.figure.Figure` and rendered by the Agg canvas directly
rather than through ``pyplot``: no display is needed, and a user's own pyplot backend and state
are left as they were. Each drawing function returns its ``Figure`` so that tests (and users) can
read what was plotted - line data, bar heights, image arrays, tick labels - instead of pixels.
"""

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from inception_keras.files import atomic_output

DPI = 100


def new_figure(width, height):
    """A blank figure ``width`` x ``height`` inches, on its own Agg canvas."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_png(figure, path):
    """Writes ``figure`` to ``path`` as PNG, atomically: a reader (or a run killed mid-write) never
    sees a partial picture, and an existing file stays intact until the new one replaces it."""
    with atomic_output(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png", dpi=DPI)
    return path

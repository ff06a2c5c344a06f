"""The confusion matrix drawn: rows true classes, columns predicted, each cell coloured by its
share of the true class's images (the row-normalised fraction) and, while the cells are large
enough to read, its count written in it.

With many classes the whole matrix is unreadable (1000 x 1000 cells); the picture then shows
the classes of the most frequent mistakes only, at most ``max_classes`` of them, and says so in
its title. The CSV written beside it always holds the whole matrix.
"""

import os

import numpy as np
from matplotlib.colors import PowerNorm

from inception_keras.confusion import confused_pairs, write_csv
from inception_keras.errors import UsageError
from inception_keras.plots import new_figure, save_png

MAX_CLASSES = 30  # classes drawn at most: 30 rows of names stay legible in a ~12-inch picture
_LABEL_CHARACTERS = 24  # longer class names are cut (ImageNet's run to 80 characters)


def shown_classes(matrix, max_classes=MAX_CLASSES):
    """The class indices drawn, ascending: all of them when there are at most ``max_classes``,
    else those of the most frequent mistakes (true and predicted classes, taken pair by pair
    until ``max_classes`` are in), or the first ``max_classes`` when there is no mistake."""
    matrix = np.asarray(matrix)
    if max_classes < 2:
        raise UsageError(f"`max_classes` must be at least 2; got {max_classes!r}.")
    if len(matrix) <= max_classes:
        return list(range(len(matrix)))
    chosen = []
    for pair in confused_pairs(matrix, top=max_classes):  # each pair adds at most two classes
        new = [c for c in (pair.true, pair.predicted) if c not in chosen]
        if len(chosen) + len(new) > max_classes:
            break
        chosen += new
    return sorted(chosen) or list(range(max_classes))


def plot_confusion(matrix, class_names=None, max_classes=MAX_CLASSES, title=None):
    """The confusion matrix ``[true, predicted]`` of counts as a
    :class:`~matplotlib.figure.Figure` (see the module docstring)."""
    matrix = np.asarray(matrix, dtype=np.int64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or not matrix.size:
        raise UsageError(f"`matrix` must be square [classes, classes]; got shape {matrix.shape}.")
    num_classes = len(matrix)
    if class_names is None:
        class_names = [str(i) for i in range(num_classes)]
    if len(class_names) != num_classes:
        raise UsageError(
            f"`class_names` has {len(class_names)} names for a {num_classes}-class matrix."
        )
    shown = shown_classes(matrix, max_classes)
    totals = matrix.sum(axis=1)
    counts = matrix[np.ix_(shown, shown)]
    # The share of all of the true class's images, not of the drawn columns only; a class
    # without images has no share (drawn blank).
    row_totals = totals[shown][:, None].astype(float)
    shares = np.divide(counts, row_totals, out=np.full(counts.shape, np.nan), where=row_totals > 0)

    n = len(shown)
    side = max(5.0, 3.0 + 0.3 * n)
    figure = new_figure(side + 1.2, side)
    ax = figure.add_subplot()
    # A square-root scale: a mistake made on 2% of a class is tinted visibly, not near-white.
    norm = PowerNorm(0.5, vmin=0.0, vmax=1.0)
    image = ax.imshow(shares, cmap="Blues", norm=norm, interpolation="nearest")
    colorbar = figure.colorbar(image, ax=ax, shrink=0.8)
    colorbar.set_label("share of the true class's images")
    labels = [_short(class_names[i]) for i in shown]
    ax.set_xticks(range(n), labels, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if n <= MAX_CLASSES:
        size = 10 if n <= 10 else 8 if n <= 20 else 6.5
        for i, j in zip(*np.nonzero(counts)):
            dark = shares[i, j] > 0.3
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=size,
                    color="white" if dark else "black")  # fmt: skip
    images = int(matrix.sum())
    accuracy = np.trace(matrix) / images if images else float("nan")
    if title is None:
        title = f"{images} images, {num_classes} classes, top-1 {accuracy:.2%}"
        if n < num_classes:
            title += (
                f"\nthe {n} classes of the most frequent mistakes "
                "(shares of each true class's images)"
            )
    ax.set_title(title)
    return figure


def save_confusion(path, matrix, class_names, max_classes=MAX_CLASSES):
    """Writes the picture to ``path`` (a ``.png``) and the whole matrix to the ``.csv`` beside it
    (:func:`inception_keras.confusion.write_csv`), each atomically. Returns both paths."""
    png, csv = confusion_paths(path)
    save_png(plot_confusion(matrix, class_names, max_classes), png)
    write_csv(csv, matrix, class_names)
    return png, csv


def confusion_paths(path):
    """``(PATH.png, PATH.csv)`` for ``path``; refuses a path that is not a ``.png`` file name."""
    path = os.fspath(path)
    root, extension = os.path.splitext(path)
    if extension.lower() != ".png" or os.path.isdir(path):
        raise UsageError(f"the confusion matrix picture {path!r} must be a .png file.")
    return path, root + ".csv"


def _short(name):
    name = str(name)
    return name if len(name) <= _LABEL_CHARACTERS else name[: _LABEL_CHARACTERS - 1] + "…"

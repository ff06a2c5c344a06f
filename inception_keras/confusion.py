"""The confusion matrix of a classifier's top-1 answers: counting, the most confused pairs, CSV.

Rows are true classes, columns predicted ones: ``matrix[i, j]`` counts images of class ``i``
predicted as ``j``. NumPy only; :mod:`inception_keras.plots.confusion` draws it.
"""

import csv
import dataclasses

import numpy as np

from inception_keras.errors import UsageError
from inception_keras.files import atomic_output

# The top-left cell of the CSV: what its rows and columns are.
CSV_CORNER = "true \\ predicted"


@dataclasses.dataclass(frozen=True)
class ConfusedPair:
    """Images of class ``true`` predicted as ``predicted``: ``count`` of them, ``share`` of all
    the images of ``true``."""

    true: int
    predicted: int
    count: int
    share: float

    def format(self, class_names=None):
        """``"ring -> circle: 5 (4.1% of ring)"``; class indices without ``class_names``."""
        true, predicted = (
            (class_names[self.true], class_names[self.predicted])
            if class_names
            else (self.true, self.predicted)
        )
        return f"{true} -> {predicted}: {self.count} ({self.share:.1%} of {true})"


def confusion_matrix(labels, predictions, num_classes):
    """``int64 [num_classes, num_classes]`` counts of (true label, predicted class) pairs."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    predictions = np.asarray(predictions, dtype=np.int64).reshape(-1)
    if labels.shape != predictions.shape:
        raise UsageError(
            f"`labels` and `predictions` differ in length: {labels.size} and {predictions.size}."
        )
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise UsageError(f"`{name}` must be class indices in [0, {num_classes}).")
    cells = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    return cells.reshape(num_classes, num_classes)


def confused_pairs(matrix, top=10):
    """The ``top`` most frequent mistakes, as :class:`ConfusedPair`, the most images first
    (then the larger share of the true class, then the lower class indices)."""
    matrix = _check_matrix(matrix)
    totals = matrix.sum(axis=1)
    off_diagonal = matrix.copy()
    np.fill_diagonal(off_diagonal, 0)
    true, predicted = np.nonzero(off_diagonal)
    counts = off_diagonal[true, predicted]
    shares = counts / totals[true]
    order = np.lexsort((predicted, true, -shares, -counts))[:top]
    return [
        ConfusedPair(int(true[i]), int(predicted[i]), int(counts[i]), float(shares[i]))
        for i in order
    ]


def write_csv(path, matrix, class_names):
    """Writes the whole matrix as CSV, atomically: a header row of the predicted classes' names,
    then one row per true class, its name first. Dense even for 1000 classes (about 2 MB of
    mostly zeros): any spreadsheet or ``pandas.read_csv(path, index_col=0)`` reads it as is."""
    matrix = _check_matrix(matrix)
    class_names = [str(name) for name in class_names]
    if len(class_names) != len(matrix):
        raise UsageError(
            f"`class_names` has {len(class_names)} names for a {len(matrix)}-class matrix."
        )
    with atomic_output(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([CSV_CORNER, *class_names])
        for name, row in zip(class_names, matrix):
            writer.writerow([name, *row.tolist()])
    return path


def read_csv(path):
    """``(matrix, class_names)`` from a file :func:`write_csv` wrote."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or not rows[0] or rows[0][0] != CSV_CORNER:
        raise UsageError(f"{path!r} is not a confusion matrix written by inception-keras.")
    class_names = rows[0][1:]
    if [row[0] for row in rows[1:]] != class_names:
        raise UsageError(f"{path!r}: its rows and columns name different classes.")
    return np.array([[int(v) for v in row[1:]] for row in rows[1:]], dtype=np.int64), class_names


def _check_matrix(matrix):
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or not matrix.shape[0]:
        raise UsageError(f"`matrix` must be square [classes, classes]; got shape {matrix.shape}.")
    return matrix

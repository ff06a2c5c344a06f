"""The confusion matrix: counting against NumPy and by hand, what the picture draws (read back
from matplotlib) and the CSV file."""

import csv
import os

import numpy as np
import pytest
from _pictures import pixels
from matplotlib.image import imread

from inception_keras.confusion import (
    ConfusedPair,
    confused_pairs,
    confusion_matrix,
    read_csv,
    write_csv,
)
from inception_keras.errors import UsageError
from inception_keras.plots.confusion import plot_confusion, save_confusion, shown_classes


def test_confusion_counts_match_numpy():
    rng = np.random.default_rng(0)
    labels, predictions = rng.integers(0, 7, 500), rng.integers(0, 7, 500)
    expected = np.zeros((7, 7), np.int64)
    np.add.at(expected, (labels, predictions), 1)
    np.testing.assert_array_equal(confusion_matrix(labels, predictions, 7), expected)
    # A class neither seen nor predicted keeps its row and column.
    assert confusion_matrix([0, 1], [1, 1], 4).tolist() == [
        [0, 1, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ]
    with pytest.raises(UsageError, match="`predictions`"):
        confusion_matrix([0, 1], [0, 4], 4)
    with pytest.raises(UsageError, match="length"):
        confusion_matrix([0, 1], [0], 4)


def test_confused_pairs_most_images_first():
    # true class 0: 10 images, 3 taken for 2; class 1: 4 images, 3 taken for 0; class 2: 20
    # images, 1 taken for 1 and 1 for 0.
    matrix = np.array([[7, 0, 3], [3, 1, 0], [1, 1, 18]])
    pairs = confused_pairs(matrix)
    assert pairs == [
        ConfusedPair(1, 0, 3, 0.75),  # 3 images each: the larger share of its class first
        ConfusedPair(0, 2, 3, 0.3),
        ConfusedPair(2, 0, 1, 0.05),  # 1 image each, same share: lower indices first
        ConfusedPair(2, 1, 1, 0.05),
    ]
    assert confused_pairs(matrix, top=1) == pairs[:1]
    assert pairs[1].format(["cat", "dog", "fox"]) == "cat -> fox: 3 (30.0% of cat)"
    assert confused_pairs(np.eye(3, dtype=int)) == []


def test_eight_classes_drawn_whole_with_counts_in_cells():
    names = ["circle", "ring", "triangle", "square", "hexagon", "star", "cross", "crescent"]
    matrix = np.diag([10, 20, 30, 40, 50, 60, 70, 80])
    matrix[0, 4], matrix[4, 0], matrix[6, 5] = 5, 2, 7
    figure = plot_confusion(matrix, names)
    ax = figure.axes[0]
    shares = ax.images[0].get_array()
    np.testing.assert_allclose(shares, matrix / matrix.sum(axis=1, keepdims=True))
    assert shares[0, 4] == pytest.approx(5 / 15)  # row-normalised: a third of the circles
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted class", "true class")
    # Each non-zero count written in its cell (x = predicted column, y = true row).
    written = {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts
    }
    assert written == {(int(i), int(j)): str(matrix[i, j]) for i, j in zip(*np.nonzero(matrix))}
    assert (
        ax.get_title()
        == f"{matrix.sum()} images, 8 classes, top-1 {np.trace(matrix) / matrix.sum():.2%}"
    )


def test_a_thousand_classes_draw_the_classes_of_the_top_mistakes(tmp_path):
    rng = np.random.default_rng(1)
    matrix = np.diag(rng.integers(30, 50, 1000))
    # 20 disjoint confused pairs with counts 40 down to 21 (true 10k+1 -> predicted 10k+2),
    # then plenty of single mistakes: the 30 classes drawn are those of the 15 largest pairs.
    for k in range(20):
        matrix[10 * k + 1, 10 * k + 2] = 40 - k
    singles = rng.integers(0, 1000, (3000, 2))
    for i, j in singles:
        if i != j and matrix[i, j] == 0:
            matrix[i, j] = 1
    names = [f"class {i:03d}, a long name to cut" for i in range(1000)]
    expected = sorted([10 * k + 1 for k in range(15)] + [10 * k + 2 for k in range(15)])
    assert shown_classes(matrix) == expected
    figure = plot_confusion(matrix, names)
    ax = figure.axes[0]
    assert ax.images[0].get_array().shape == (30, 30)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [names[i][:23] + "…" for i in expected]
    assert [t.get_text() for t in ax.get_xticklabels()] == labels
    shares = ax.images[0].get_array()
    totals = matrix.sum(axis=1)
    np.testing.assert_allclose(shares, matrix[np.ix_(expected, expected)] / totals[expected, None])
    assert "the 30 classes of the most frequent mistakes" in ax.get_title()

    png, csv_path = save_confusion(tmp_path / "confusion.png", matrix, names)
    assert csv_path == str(tmp_path / "confusion.csv")
    assert os.path.getsize(png) < 3 << 20  # a few MB at most
    assert imread(png).shape[:2] == pixels(figure).shape[:2]
    read, read_names = read_csv(csv_path)  # the whole matrix, not the drawn part
    np.testing.assert_array_equal(read, matrix)
    assert read_names == names


def test_a_perfect_classifier_of_many_classes_draws_the_first_classes():
    assert shown_classes(np.eye(100, dtype=int), max_classes=12) == list(range(12))


def test_confusion_csv_round_trips_names_with_commas_and_quotes(tmp_path):
    names = ['dog, "good" one', "cat", "naïve; class"]
    matrix = np.array([[1, 2, 0], [0, 5, 0], [3, 0, 1234567]])
    path = write_csv(tmp_path / "c.csv", matrix, names)
    read, read_names = read_csv(path)
    np.testing.assert_array_equal(read, matrix)
    assert read_names == names
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["true \\ predicted", *names]
    assert [row[0] for row in rows[1:]] == names
    with pytest.raises(UsageError, match="names"):
        write_csv(tmp_path / "d.csv", matrix, names[:2])
    assert not (tmp_path / "d.csv").exists()


def test_confusion_picture_path_must_be_a_png(tmp_path):
    with pytest.raises(UsageError, match="must be a .png"):
        save_confusion(tmp_path / "c.jpg", np.eye(2, dtype=int), ["a", "b"])
    assert os.listdir(tmp_path) == []

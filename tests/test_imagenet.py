"""ImageNet-1k class ids, names and decode_predictions, checked against independent sources."""

import configparser
import importlib.util
import os
import re

import numpy as np
import pytest

from inception_keras import imagenet

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tfds_file(*parts):
    # find_spec locates the package without importing it (importing it imports TensorFlow).
    spec = importlib.util.find_spec("tensorflow_datasets")
    return os.path.join(spec.submodule_search_locations[0], *parts)


def test_ids_are_tfds_imagenet2012_labels():
    with open(_tfds_file("datasets", "imagenet2012", "labels.txt"), encoding="utf-8") as f:
        expected = f.read().split()
    assert len(expected) == 1000
    assert imagenet.wordnet_ids() == tuple(expected)


def test_descriptions_match_tfds_siscore_imagenet_list():
    # TFDS' SI-Score builder carries the usual 1000 ImageNet lemma strings (no ids), in class
    # order, with only the two "crane" entries qualified.
    path = _tfds_file("datasets", "siscore", "labels.py")
    if not os.path.exists(path):
        pytest.skip("this tensorflow-datasets has no siscore/labels.py")
    spec = importlib.util.spec_from_file_location("_siscore_labels", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = list(module.IMAGENET_LABELS_LIST)
    assert expected[134] == "crane (bird)" and expected[517] == "crane (machine)"
    expected[134] = expected[517] = "crane"
    assert list(imagenet.class_descriptions()) == expected


@pytest.mark.parametrize(
    "index, wnid, name, description",
    [
        (0, "n01440764", "tench", "tench, Tinca tinca"),
        (1, "n01443537", "goldfish", "goldfish, Carassius auratus"),
        (281, "n02123045", "tabby", "tabby, tabby cat"),
        (285, "n02124075", "Egyptian cat", "Egyptian cat"),
        (409, "n02708093", "analog clock", "analog clock"),
        (999, "n15075141", "toilet tissue", "toilet tissue, toilet paper, bathroom tissue"),
    ],
)
def test_known_entries(index, wnid, name, description):
    assert imagenet.wordnet_ids()[index] == wnid
    assert imagenet.class_names()[index] == name
    assert imagenet.class_descriptions()[index] == description


def test_names_unique_and_qualified_where_first_lemmas_collide():
    ids, names = imagenet.wordnet_ids(), imagenet.class_names()
    assert len(names) == 1000
    assert len({n.casefold() for n in names}) == 1000
    by_id = dict(zip(ids, names))
    assert {w: by_id[w] for w in imagenet._QUALIFIED_NAMES} == {
        "n02012849": "crane (bird)",
        "n03126707": "crane (machine)",
        "n03710637": "maillot (tights)",
        "n03710721": "maillot (swimsuit)",
        "n02113186": "Cardigan (dog)",
        "n02963159": "cardigan (sweater)",
    }
    # Everything else is the first lemma verbatim.
    for wnid, name, description in zip(ids, names, imagenet.class_descriptions()):
        if wnid not in imagenet._QUALIFIED_NAMES:
            assert name == description.split(", ")[0]


def test_file_is_pure_data_in_package():
    assert os.path.dirname(imagenet.LABELS_FILE) == os.path.dirname(imagenet.__file__)
    with open(imagenet.LABELS_FILE, encoding="utf-8") as f:
        lines = f.read().split("\n")
    assert lines[-1] == "" and len(lines) == 1001
    assert all(line.count("\t") == 1 for line in lines[:-1])


def test_setup_cfg_ships_the_labels_file():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(REPO, "setup.cfg"))
    assert "imagenet_labels.txt" in cfg["options.package_data"]["inception_keras"].split()


def test_decode_predictions_order_and_scores():
    scores = np.zeros((2, 1000), np.float32)
    scores[0, [3, 999, 0, 134]] = [0.5, 0.25, 0.125, 0.0625]
    scores[1, 517] = 1.0
    decoded = imagenet.decode_predictions(scores, top=4)
    assert decoded[0] == [
        ("n01491361", "tiger shark", 0.5),
        ("n15075141", "toilet tissue", 0.25),
        ("n01440764", "tench", 0.125),
        ("n02012849", "crane (bird)", 0.0625),
    ]
    # Row 1: the one non-zero, then ties (all 0.0) in class-index order.
    assert decoded[1] == [
        ("n03126707", "crane (machine)", 1.0),
        ("n01440764", "tench", 0.0),
        ("n01443537", "goldfish", 0.0),
        ("n01484850", "great white shark", 0.0),
    ]
    assert all(type(score) is float for row in decoded for _, _, score in row)
    assert [len(row) for row in imagenet.decode_predictions(scores)] == [5, 5]
    assert len(imagenet.decode_predictions(scores.tolist(), top=1000)[0]) == 1000


@pytest.mark.parametrize("shape", [(1000,), (2, 999), (2, 1001), (1, 1, 1000), ()])
def test_decode_predictions_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match=r"\(N, 1000\).*got shape " + re.escape(str(shape))):
        imagenet.decode_predictions(np.zeros(shape))


@pytest.mark.parametrize("top", [0, -1, 1001, 2.0, True])
def test_decode_predictions_rejects_bad_top(top):
    with pytest.raises(ValueError, match="top"):
        imagenet.decode_predictions(np.zeros((1, 1000)), top=top)


def test_damaged_file_is_reported(tmp_path, monkeypatch):
    with open(imagenet.LABELS_FILE, encoding="utf-8") as f:
        lines = f.read().splitlines()
    short = tmp_path / "short.txt"
    short.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    monkeypatch.setattr(imagenet, "LABELS_FILE", str(short))
    with pytest.raises(ValueError, match="damaged: it has 999 lines"):
        imagenet.class_names()
    swapped = tmp_path / "swapped.txt"
    swapped.write_text("\n".join([lines[1], lines[0]] + lines[2:]) + "\n", encoding="utf-8")
    monkeypatch.setattr(imagenet, "LABELS_FILE", str(swapped))
    with pytest.raises(ValueError, match="not unique and sorted"):
        imagenet.wordnet_ids()
    no_tab = tmp_path / "no_tab.txt"
    no_tab.write_text("\n".join([lines[0].replace("\t", " ")] + lines[1:]) + "\n")
    monkeypatch.setattr(imagenet, "LABELS_FILE", str(no_tab))
    with pytest.raises(ValueError, match="line 1 is"):
        imagenet.class_descriptions()

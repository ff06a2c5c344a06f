"""The 1000 ILSVRC-2012 (ImageNet-1k) classes: WordNet ids, names, and ``decode_predictions``.

Class index ``i`` is the ``i``-th WordNet id in sorted order. That is the order of the id list
TensorFlow Datasets ships (``tensorflow_datasets/datasets/imagenet2012/labels.txt``) and so
the order of the ``label`` feature of its ``imagenet2012`` data set; it is also Caffe's synset
order and TF-slim's order once slim's background class 0 is dropped.

The names live in ``imagenet_labels.txt`` next to this module (shipped as package data): 1000
lines ``wnid<TAB>lemmas``, e.g. ``n01440764<TAB>tench, Tinca tinca``. Nothing is downloaded.

Source and licence: the lemma strings are those of WordNet 3.0 ("WordNet 3.0 Copyright 2006 by
Princeton University. All rights reserved."), under the WordNet licence, a permissive BSD-style
licence allowing use, copying and redistribution for any purpose, without fee, that keep its
notice and disclaimer: https://wordnet.princeton.edu/license-and-commercial-use (the notice
ships beside this module, in ``NOTICE``). They were taken,
as data, from ``timm/data/_info/imagenet_synset_to_lemma.txt`` in the ``timm`` 1.0.31 wheel
(Apache-2.0), for the ids in TFDS' ``labels.txt``; timm's ``imagenet_synsets.txt`` lists the
same 1000 ids in the same order. The lemma strings are the ones the usual ImageNet class
indexes show.

Three views of each class:

* :func:`wordnet_ids` -- ``"n01440764"``;
* :func:`class_descriptions` -- every lemma of the synset, ``"tench, Tinca tinca"``;
* :func:`class_names` -- one short name, unique among the 1000: the first lemma (``"tench"``),
  except for the six classes whose first lemmas collide (exactly, or when case is ignored, so
  the names stay distinct as file or folder names on case-insensitive file systems). Those six
  take a fixed qualifier in parentheses, from the WordNet gloss of the synset::

      n02012849  crane (bird)          n03126707  crane (machine)
      n03710637  maillot (tights)      n03710721  maillot (swimsuit)
      n02113186  Cardigan (dog)        n02963159  cardigan (sweater)
"""

import functools
import os
import re

import numpy as np

from inception_keras.defaults import IMAGENET_CLASSES
from inception_keras.errors import UsageError

LABELS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet_labels.txt")
"""Path of the shipped ``wnid<TAB>lemmas`` file (1000 lines, class-index order)."""

NUM_CLASSES = IMAGENET_CLASSES  # its former name, still importable

# WordNet ids whose first lemma is shared with another class (case ignored) -> their short name.
_QUALIFIED_NAMES = {
    "n02012849": "crane (bird)",
    "n03126707": "crane (machine)",
    "n03710637": "maillot (tights)",
    "n03710721": "maillot (swimsuit)",
    "n02113186": "Cardigan (dog)",
    "n02963159": "cardigan (sweater)",
}

_WNID = re.compile(r"n\d{8}")


@functools.cache
def _table(path):
    """(ids, descriptions, names) read from ``path`` and checked; cached per path."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()

    def damaged(why):
        return ValueError(
            f"ImageNet labels file {path} is damaged: {why}; expected {IMAGENET_CLASSES} lines "
            "'wnid<TAB>lemmas' in sorted wnid order (reinstall inception-keras)."
        )

    if len(lines) != IMAGENET_CLASSES:
        raise damaged(f"it has {len(lines)} lines")
    ids, descriptions = [], []
    for number, line in enumerate(lines, 1):
        wnid, tab, description = line.partition("\t")
        if not tab or not _WNID.fullmatch(wnid) or not description.strip():
            raise damaged(f"line {number} is {line!r}")
        ids.append(wnid)
        descriptions.append(description)
    if ids != sorted(set(ids)):
        raise damaged("the WordNet ids are not unique and sorted")
    names = [_QUALIFIED_NAMES.get(w, d.split(",")[0].strip()) for w, d in zip(ids, descriptions)]
    if len({n.casefold() for n in names}) != IMAGENET_CLASSES:
        raise damaged("the short class names are not unique")
    return tuple(ids), tuple(descriptions), tuple(names)


def wordnet_ids() -> tuple[str, ...]:
    """The 1000 WordNet ids in class-index order, e.g. ``wordnet_ids()[0] == "n01440764"``."""
    return _table(LABELS_FILE)[0]


def class_descriptions() -> tuple[str, ...]:
    """All lemmas of each class, comma separated, e.g. ``"tench, Tinca tinca"`` for class 0."""
    return _table(LABELS_FILE)[1]


def class_names() -> tuple[str, ...]:
    """One short, unique name per class: the first lemma, e.g. ``"tench"``, or, for the six
    classes whose first lemmas collide, that lemma with a qualifier, e.g. ``"crane (bird)"``
    (see the module docstring). Unique even when case is ignored."""
    return _table(LABELS_FILE)[2]


def decode_predictions(probabilities, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """The ``top`` classes of each row of ``probabilities`` (shape ``(N, 1000)``), best first.

    Like ``keras.applications.imagenet_utils.decode_predictions`` but offline: one list per row
    of ``(wordnet_id, class_name, score)`` tuples, where ``class_name`` is from
    :func:`class_names` and ``score`` is the row's value as a Python float. Equal scores keep
    class-index order. Any array-like works (NumPy array, ``tf.Tensor``, nested lists).
    """
    scores = np.asarray(probabilities, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != IMAGENET_CLASSES:
        raise UsageError(
            "decode_predictions expects a batch of ImageNet scores of shape "
            f"(N, {IMAGENET_CLASSES}), got shape {scores.shape}."
        )
    is_int = isinstance(top, (int, np.integer)) and not isinstance(top, bool)
    if not is_int or not 1 <= top <= IMAGENET_CLASSES:
        raise UsageError(f"top must be an integer from 1 to {IMAGENET_CLASSES}, got {top!r}.")
    ids, names = wordnet_ids(), class_names()
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top]
    return [[(ids[i], names[i], float(row[i])) for i in best] for row, best in zip(scores, order)]

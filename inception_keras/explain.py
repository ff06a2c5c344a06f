"""Where the network looks, and which branch of each inception block carries its decision.

Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization", ICCV 2017, https://arxiv.org/abs/1610.02391): for a class c and a layer's output
A (channels A_k), the weights are the spatial means of d z_c / d A_k, z_c the class's *logit*
(before the softmax), and the map is ReLU(sum_k w_k A_k), upsampled bilinearly to the input and
divided by its maximum. :func:`grad_cam` returns those maps; :func:`explain` also returns the
probabilities and the explained classes from the same forward pass.

Branch attribution (:func:`branch_attribution`): the paper's inception block concatenates four
branches - 1x1, 1x1 -> 3x3, 1x1 -> 5x5 and 3x3 max-pool -> 1x1 (Table 1's ``#1x1``, ``#3x3``,
``#5x5``, ``pool proj``) - so each branch owns a slice of the block's output channels. Each
channel's attribution is sum |dz/dA * A| over its positions (gradient times input, the
first-order share of z that flows through it), and a branch's share is its slice's part of the
block's total. The slices come from :func:`inception_keras.architecture.branch_widths`.

This module computes; :mod:`inception_keras.plots.explain` draws. Models are run in inference
mode (BatchNorm's moving statistics, no dropout) and in float32: a model built under a
mixed-precision policy is explained through a float32 copy of its weights
(:func:`inception_keras.model.inference_model`); the global policy is never changed.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from inception_keras.architecture import (
    BRANCHES,
    GRAD_CAM_LAYER,
    NAIVE_BRANCHES,
    TABLE_1,
    Conv,
    Inception,
    branch_widths,
)
from inception_keras.defaults import IMAGE_BATCH_SIZE
from inception_keras.errors import UsageError
from inception_keras.model import inference_model

DEFAULT_LAYER = GRAD_CAM_LAYER
BLOCKS = tuple(row.name for row in TABLE_1 if isinstance(row, Inception))
# Layers worth naming when a layer name is wrong: Table 1's convolutions and blocks.
_PAPER_LAYERS = tuple(row.name for row in TABLE_1 if isinstance(row, (Conv, Inception)))


@dataclasses.dataclass(frozen=True)
class BranchAttribution:
    """Each inception block's four branches' shares of the attribution to a class's logit.

    Attributes:
        blocks: the blocks, in network order (``inception_3a`` ... ``inception_5b``).
        branches: the branches in concatenation order, by Table 1's columns (``#1x1``,
            ``#3x3``, ``#5x5``, ``pool proj``; ``pool`` for the naive module).
        labels: what each branch computes, with the model's kernel sizes (e.g.
            ``"1x1 → 5x5"``, ``"1x1 → 3x3"`` for the slim variant's "5x5" branch).
        widths: int ``[blocks, 4]``, each branch's output channels (its slice of the block).
        per_image: ``[images, blocks, 4]``, each image's shares (rows sum to 1; NaN where the
            image's attribution at that block is zero).
        class_indices: int ``[images]``, the class whose logit each image's shares explain.
        shares: ``[blocks, 4]``, the mean of the per-image shares (images whose attribution at a
            block is zero are left out of that block's mean), so each row sums to 1.
    """

    blocks: tuple[str, ...]
    branches: tuple[str, ...]
    labels: tuple[str, ...]
    widths: np.ndarray
    per_image: np.ndarray
    class_indices: np.ndarray
    shares: np.ndarray = dataclasses.field(init=False)

    def __post_init__(self):
        counted = np.isfinite(self.per_image[..., 0])
        total = np.where(counted[..., None], self.per_image, 0.0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = total / counted.sum(axis=0)[:, None]
        object.__setattr__(self, "shares", shares)

    @property
    def channel_shares(self):
        """``[blocks, 4]``: each branch's share of its block's channels, for comparison."""
        return self.widths / self.widths.sum(axis=1, keepdims=True)

    def format(self, class_names=None):
        """A terminal table: one row per block, each branch's share (and, in brackets, its share
        of the block's channels)."""
        classes = _class_list(self.class_indices, class_names)
        lines = [
            f"Branch shares of sum |dz/dA * A| over each block's output A, z the logit of "
            f"{classes}, mean over {len(self.class_indices)} image(s).",
            "In brackets: the branch's share of the block's channels.",
        ]
        cells = [
            [f"{share:6.1%} ({channels:3.0%})" for share, channels in zip(row, channel_row)]
            for row, channel_row in zip(self.shares, self.channel_shares)
        ]
        name_width = max(len(b) for b in self.blocks + ("block",))
        widths = [max(len(b), *(len(r[i]) for r in cells)) for i, b in enumerate(self.branches)]
        rows = [("block", *self.branches)] + [(b, *r) for b, r in zip(self.blocks, cells)]
        for i, row in enumerate(rows):
            lines.append(
                "  ".join(
                    [row[0].ljust(name_width)] + [c.rjust(w) for c, w in zip(row[1:], widths)]
                )
            )
            if i == 0:
                lines.append("  ".join(["-" * name_width] + ["-" * w for w in widths]))
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Explanation:
    """What :func:`explain` found for a batch of images.

    Attributes:
        heatmaps: float32 ``[images, height, width]``, the Grad-CAM maps at the input's size,
            each in [0, 1] with its maximum at 1 (all zero where the map is zero everywhere).
        class_indices: int ``[images]``, the class each map explains.
        probabilities: float32 ``[images, classes]``, the model's main output (its softmax).
        layer: the layer the maps were computed at.
        branches: the :class:`BranchAttribution` for the same classes, when asked for.
    """

    heatmaps: np.ndarray
    class_indices: np.ndarray
    probabilities: np.ndarray
    layer: str
    branches: BranchAttribution | None = None

    @property
    def predicted(self):
        """int ``[images]``: the most probable class of each image."""
        return np.argmax(self.probabilities, axis=-1)

    def top_k(self, k):
        """Per image the ``k`` most probable ``(class index, probability)``, best first."""
        order = np.argsort(-self.probabilities, axis=-1, kind="stable")[:, :k]
        return [[(int(c), float(p[c])) for c in row] for row, p in zip(order, self.probabilities)]


def grad_cam(model, images, class_index=None, layer=DEFAULT_LAYER, batch_size=IMAGE_BATCH_SIZE):
    """Grad-CAM heat maps: where ``model`` looked for a class, one map per image.

    Args:
        model: a GoogLeNet (any variant, with or without aux heads: the main head is explained),
            or any functional Keras classifier whose main output is an activation layer on the
            logits (or the logits themselves).
        images: float RGB pixels in [0, 255], ``[batch, height, width, 3]``, as the model takes
            them (it rescales them itself).
        class_index: ``None`` (each image's most probable class), one class index for every
            image, or one per image.
        layer: the layer whose output is weighted, by its name: a block's paper name
            (``inception_3a`` ... ``inception_5b``), ``conv2``, or any layer with a spatial
            output. Later blocks see more context, earlier ones have finer maps.
        batch_size: images per forward and backward pass.

    Returns:
        float32 ``[batch, height, width]`` in [0, 1]: ReLU(sum_k w_k A_k) upsampled bilinearly to
        the images' size and divided by its maximum. A map that is zero everywhere (no positive
        evidence for the class at that layer) stays zero. :func:`explain` returns the same maps
        with the probabilities and classes.
    """
    return explain(model, images, class_index, layer, batch_size=batch_size).heatmaps


def explain(
    model,
    images,
    class_index=None,
    layer=DEFAULT_LAYER,
    branches=False,
    batch_size=IMAGE_BATCH_SIZE,
):
    """Grad-CAM maps, probabilities and the explained classes, from one pass over the images.

    Arguments as for :func:`grad_cam`; ``branches=True`` also computes the
    :func:`branch_attribution` of the same classes in the same pass.

    Returns:
        :class:`Explanation`.
    """
    head = _Head(model)
    layer = head.feature_layer(layer)
    images = head.check_images(images)
    classes = _class_indices(class_index, len(images), head.num_classes)
    blocks = head.blocks() if branches else {}
    maps, chosen, probabilities, shares = [], [], [], []
    for start in range(0, len(images), _check_batch_size(batch_size)):
        batch = images[start : start + batch_size]
        picked = None if classes is None else classes[start : start + batch_size]
        features, gradients, logits, scores = head.gradients(batch, picked, [layer, *blocks])
        maps.append(_cam(features[0], gradients[0], tf.shape(batch)[1:3]))
        chosen.append(_chosen(logits, picked))
        probabilities.append(scores.numpy())
        if blocks:
            shares.append(_branch_shares(features[1:], gradients[1:], list(blocks.values())))
    chosen = np.concatenate(chosen)
    return Explanation(
        heatmaps=np.concatenate(maps),
        class_indices=chosen,
        probabilities=np.concatenate(probabilities),
        layer=layer,
        branches=head.attribution(blocks, np.concatenate(shares), chosen) if blocks else None,
    )


def branch_attribution(model, images, class_index=None, batch_size=IMAGE_BATCH_SIZE):
    """Each inception block's four branches' shares of the attribution to a class's logit.

    For each of the nine blocks, with A its (concatenated) output and z the class's logit, each
    channel's attribution is sum over positions of |dz/dA * A|; a branch's share is the sum over
    its channels (its slice of A, in concatenation order, widths from Table 1 - the naive
    module's pool branch carries the block's whole input depth) divided by the block's total.
    Shares are computed per image and averaged over the images (the mean of per-image shares,
    so every image counts alike whatever its logit's size).

    Args:
        model: a GoogLeNet of any variant, with or without aux heads.
        images, class_index, batch_size: as for :func:`grad_cam`.

    Returns:
        :class:`BranchAttribution`; ``.shares`` is ``[9, 4]``, rows summing to 1.
    """
    head = _Head(model)
    images = head.check_images(images)
    classes = _class_indices(class_index, len(images), head.num_classes)
    blocks = head.blocks()
    shares, chosen = [], []
    for start in range(0, len(images), _check_batch_size(batch_size)):
        batch = images[start : start + batch_size]
        picked = None if classes is None else classes[start : start + batch_size]
        features, gradients, logits, _ = head.gradients(batch, picked, list(blocks))
        shares.append(_branch_shares(features, gradients, list(blocks.values())))
        chosen.append(_chosen(logits, picked))
    return head.attribution(blocks, np.concatenate(shares), np.concatenate(chosen))


def check_layer(model, layer):
    """``layer`` if Grad-CAM can use it on ``model`` (a layer with a spatial output on the main
    head's path); a one-line ``UsageError`` naming the layers it could use otherwise."""
    return _Head(model).feature_layer(layer)


class _Head:
    """A model prepared for explanation: float32, its main head, where its logits are."""

    def __init__(self, model):
        if not isinstance(model, keras.Model) or not hasattr(model, "inputs"):
            raise UsageError(f"`model` must be a functional Keras model; got {type(model)}.")
        names = {layer.name for layer in model.layers}
        if "predictions" in names:
            output = model.get_layer("predictions")
        elif len(model.outputs) == 1:
            output = model.get_layer(getattr(model, "output_names", [model.layers[-1].name])[0])
        else:
            raise UsageError(
                f"{model.name!r} has {len(model.outputs)} outputs and no layer 'predictions' to "
                "explain."
            )
        # The main head alone (aux heads play no part in its logits), in float32 whatever the
        # policy it was built under: a bfloat16 copy would give gradients to 2-3 digits.
        main = inference_model(keras.Model(model.input, output.output, name=model.name))
        self.model, output = main, main.get_layer(output.name)
        activation = output.get_config().get("activation")
        if isinstance(output, keras.layers.Softmax) or (
            isinstance(output, keras.layers.Activation) and activation not in ("linear", None)
        ):
            self.logits, self.scores = output.input, output.output
        elif activation in ("linear", None):  # logits out (classifier_activation=None)
            self.logits, self.scores = output.output, None
        else:
            raise UsageError(
                f"{model.name!r} ends in {output.name!r}, which applies its {activation!r} "
                "inside: Grad-CAM needs the logits before it (end the model in a separate "
                "Activation layer)."
            )
        if len(self.logits.shape) != 2:
            raise UsageError(
                f"{model.name!r}'s output {tuple(self.logits.shape)} is not [batch, classes]."
            )
        self.num_classes = int(self.logits.shape[-1])
        self._models = {}  # the gradient models built so far, by their feature layers

    def feature_layer(self, name):
        """``name`` if it is a layer with a spatial output on the main head's path."""
        spatial = [
            layer.name
            for layer in self.model.layers
            if len(getattr(layer.output, "shape", ())) == 4
            and not isinstance(layer, keras.layers.InputLayer)
        ]
        examples = [n for n in _PAPER_LAYERS if n in spatial] or spatial[-8:]
        if name not in spatial:
            what = (
                "has no spatial output"
                if name in {lay.name for lay in self.model.layers}
                else (f"is not a layer of {self.model.name!r}")
            )
            raise UsageError(
                f"`layer` {name!r} {what}; Grad-CAM needs a feature map, e.g. "
                f"{', '.join(examples)}."
            )
        return name

    def check_images(self, images):
        images = tf.convert_to_tensor(images)
        shape = tuple(images.shape)
        if len(shape) != 4 or shape[-1] != 3:
            hint = " (one image: add a batch axis, images[None])" if len(shape) == 3 else ""
            raise UsageError(
                f"`images` must be RGB images [batch, height, width, 3]; got shape {shape}{hint}."
            )
        if shape[0] == 0:
            raise UsageError("`images` is empty.")
        expected = tuple(self.model.input_shape[1:3])
        if any(e is not None and e != s for e, s in zip(expected, shape[1:3])):
            raise UsageError(
                f"`images` are {shape[1]}x{shape[2]} but {self.model.name!r} takes "
                f"{expected[0]}x{expected[1]}."
            )
        return tf.cast(images, tf.float32)

    def gradients(self, images, class_indices, layers):
        """Outputs of ``layers``, d logit / d each of them, the logits and the probabilities."""
        model = self._models.get(tuple(layers))
        if model is None:
            outputs = [self.model.get_layer(name).output for name in layers]
            scores = self.logits if self.scores is None else self.scores
            model = keras.Model(self.model.input, [*outputs, self.logits, scores])
            self._models[tuple(layers)] = model
        with tf.GradientTape() as tape:
            # The input is watched so that frozen models (no trainable weights) record too.
            tape.watch(images)
            *features, logits, scores = model(images, training=False)
            chosen = _chosen(logits, class_indices)
            target = tf.gather(logits, chosen, axis=1, batch_dims=1)
        # Images are independent (inference mode), so the gradient of the sum is per image.
        gradients = tape.gradient(target, features)
        if self.scores is None:
            scores = tf.nn.softmax(logits)
        return features, gradients, logits, scores

    def blocks(self):
        """``{block: branch widths}`` from Table 1, checked against the model's concatenations."""
        names = {layer.name for layer in self.model.layers}
        missing = [b for b in BLOCKS if b not in names]
        if missing:
            raise UsageError(
                f"{self.model.name!r} has no inception block {missing[0]!r}: branch attribution "
                "needs a GoogLeNet."
            )
        self.naive = f"{BLOCKS[0]}_pool_proj" not in names
        widths = branch_widths(naive=self.naive)
        for block, expected in widths.items():
            built = tuple(int(t.shape[-1]) for t in self.model.get_layer(block).input)
            if built != expected:
                raise UsageError(
                    f"{block!r} concatenates branches of {built} channels where Table 1 gives "
                    f"{expected}: not a GoogLeNet built from Table 1."
                )
        return widths

    def attribution(self, blocks, per_image, class_indices):
        kernel = self.model.get_layer(f"{BLOCKS[0]}_5x5").kernel_size[0]
        if self.naive:
            labels = ("1x1", "3x3", f"{kernel}x{kernel}", "3x3 max-pool")
        else:
            labels = ("1x1", "1x1 → 3x3", f"1x1 → {kernel}x{kernel}", "3x3 max-pool → 1x1")
        return BranchAttribution(
            blocks=tuple(blocks),
            branches=NAIVE_BRANCHES if self.naive else BRANCHES,
            labels=labels,
            widths=np.array(list(blocks.values())),
            per_image=per_image,
            class_indices=class_indices,
        )


def _cam(features, gradients, size):
    weights = tf.reduce_mean(gradients, axis=(1, 2))  # [batch, channels]
    cam = tf.nn.relu(tf.einsum("bhwc,bc->bhw", features, weights))
    cam = tf.image.resize(cam[..., None], size, method="bilinear")[..., 0]
    peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
    return tf.math.divide_no_nan(cam, peak).numpy()


def _branch_shares(features, gradients, widths):
    """``[batch, blocks, 4]``: each branch's share of sum |dz/dA * A| at each block."""
    shares = []
    for a, g, block_widths in zip(features, gradients, widths):
        per_channel = tf.reduce_sum(tf.abs(g * a), axis=(1, 2)).numpy().astype(np.float64)
        sums = np.stack(
            [s.sum(-1) for s in np.split(per_channel, np.cumsum(block_widths)[:-1], -1)], -1
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            total = sums.sum(-1, keepdims=True)
            shares.append(np.where(total > 0, sums / total, np.nan))
    return np.stack(shares, axis=1)


def _chosen(logits, class_indices):
    if class_indices is None:
        return tf.argmax(logits, axis=-1, output_type=tf.int32).numpy()
    return np.asarray(class_indices)


def _class_indices(class_index, batch, num_classes):
    if class_index is None:
        return None
    indices = np.asarray(class_index)
    if indices.dtype == bool or not np.issubdtype(indices.dtype, np.integer):
        raise UsageError(
            f"`class_index` must be None, an int or one int per image; got {class_index!r}."
        )
    if indices.ndim == 0:
        indices = np.full(batch, int(indices))
    elif indices.shape != (batch,):
        raise UsageError(
            f"`class_index` has {indices.size} entries for {batch} images: give one per image or "
            "a single int."
        )
    bad = indices[(indices < 0) | (indices >= num_classes)]
    if bad.size:
        raise UsageError(
            f"`class_index` {int(bad[0])} is out of range: the model has {num_classes} classes "
            f"(0 to {num_classes - 1})."
        )
    return indices.astype(np.int32)


def _check_batch_size(batch_size):
    if int(batch_size) != batch_size or batch_size < 1:
        raise UsageError(f"`batch_size` must be a positive integer; got {batch_size!r}.")
    return batch_size


def _class_list(class_indices, class_names):
    unique = list(dict.fromkeys(int(c) for c in class_indices))
    named = [class_names[c] if class_names else str(c) for c in unique]
    if len(named) > 4:
        named = named[:4] + [f"... ({len(unique)} classes)"]
    return ("class " if len(unique) == 1 else "classes ") + ", ".join(named)


_MOVED_TO_EXPLAINED_FILES = ("ExplainedFiles", "load_checkpoint", "class_index_of", "explain_files")


def __getattr__(name):
    """Image files explained with a checkpoint moved to :mod:`inception_keras.explained_files`;
    their names stay importable from here."""
    if name in _MOVED_TO_EXPLAINED_FILES:
        from inception_keras import explained_files  # on first use: it builds on this module

        return getattr(explained_files, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

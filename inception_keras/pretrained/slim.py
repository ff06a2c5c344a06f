"""TF-slim's Inception v1 checkpoint (``inception_v1.ckpt``) mapped onto this package's layer names
(the ``"slim"`` variant).

Slim names blocks by their position in the network (``Mixed_3b`` is the paper's inception 3a),
its BatchNorm has no scale, its third branch is a 3x3 convolution, and its classifier is a 1x1
convolution over 1001 classes, class 0 being "background"; that logit is dropped here so the
1000 classes line up with ImageNet's (and Caffe's) order.
"""

import numpy as np
import tensorflow as tf

from inception_keras.architecture import TABLE_1, Inception
from inception_keras.errors import UsageError

SCOPE = "InceptionV1"
STEM = {"Conv2d_1a_7x7": "conv1", "Conv2d_2b_1x1": "conv2_reduce", "Conv2d_2c_3x3": "conv2"}
SLIM_BLOCKS = (
    "Mixed_3b",
    "Mixed_3c",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "Mixed_5b",
    "Mixed_5c",
)
BRANCHES = {
    "1x1": "Branch_0/Conv2d_0a_1x1",
    "3x3_reduce": "Branch_1/Conv2d_0a_1x1",
    "3x3": "Branch_1/Conv2d_0b_3x3",
    "5x5_reduce": "Branch_2/Conv2d_0a_1x1",
    "5x5": "Branch_2/Conv2d_0b_3x3",
    "pool_proj": "Branch_3/Conv2d_0b_1x1",
}
# Slim's one naming quirk: this block's second branch-2 convolution is "0a", not "0b".
QUIRKS = {("Mixed_5b", "5x5"): "Branch_2/Conv2d_0a_3x3"}
LOGITS = "Logits/Conv2d_0c_1x1"
BACKGROUND_CLASSES = 1


def conv_names():
    """``{slim scope: our convolution's name}`` for every convolution with BatchNorm."""
    names = {f"{SCOPE}/{slim}": ours for slim, ours in STEM.items()}
    blocks = [row.name for row in TABLE_1 if isinstance(row, Inception)]
    for slim_block, block in zip(SLIM_BLOCKS, blocks, strict=True):
        for branch, scope in BRANCHES.items():
            scope = QUIRKS.get((slim_block, branch), scope)
            names[f"{SCOPE}/{slim_block}/{scope}"] = f"{block}_{branch}"
    return names


def convert(prefix):
    """Our ``{layer name: weights}`` from a TF-slim Inception v1 checkpoint prefix.

    Other variables in the checkpoint (global step, optimizer slots, moving averages) are ignored.
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"corrupt or not a TF checkpoint: {prefix} ({message})") from None
    available = reader.get_variable_to_shape_map()

    def get(name):
        if name not in available:
            raise UsageError(f"{prefix} has no variable {name!r}: not TF-slim's Inception v1.")
        return np.asarray(reader.get_tensor(name), dtype=np.float32)

    weights = {}
    for scope, ours in conv_names().items():
        weights[ours] = [get(f"{scope}/weights")]
        weights[f"{ours}_bn"] = [
            get(f"{scope}/BatchNorm/{v}") for v in ("beta", "moving_mean", "moving_variance")
        ]
    kernel, bias = get(f"{SCOPE}/{LOGITS}/weights"), get(f"{SCOPE}/{LOGITS}/biases")
    if kernel.ndim != 4 or kernel.shape[:2] != (1, 1):
        raise UsageError(
            f"{prefix}: {SCOPE}/{LOGITS}/weights has shape {kernel.shape}, not a 1x1 convolution."
        )
    weights["fc"] = [kernel[0, 0, :, BACKGROUND_CLASSES:], bias[BACKGROUND_CLASSES:]]
    return weights

"""An independent TF-slim-side oracle for loading slim's ``inception_v1.ckpt`` into Keras.

Test support only (no tests here). It knows slim's Inception v1 from the slim side alone:
the checkpoint's variable names and shapes, a writer for a random checkpoint in slim's
name-based (TF1) format, and slim's inference forward pass in plain TF ops. Nothing here
imports ``inception_keras``, so a converter is checked against a second implementation
rather than against itself.

Slim's conventions written down here on purpose:
  * every conv but the logits is conv (no bias) -> BatchNorm without gamma
    (``scale=False``, epsilon 0.001) -> ReLU;
  * all convs and max-pools use TF 'SAME' padding, which for even inputs and stride 2 pads
    less on the top/left than on the bottom/right (7x7/2 at 224: 2 before, 3 after);
  * branch 2's second conv is a 3x3 (not the paper's 5x5), and in Mixed_5b slim names it
    ``Conv2d_0a_3x3`` instead of ``Conv2d_0b_3x3``;
  * the logits are a 1x1 conv with bias over 1001 classes, class 0 being "background".
"""

import os

import numpy as np
import tensorflow as tf

SCOPE = "InceptionV1"
BN_EPSILON = 0.001
NUM_CLASSES = 1001

# Table 1 of the GoogLeNet paper, keyed by slim's block name (Mixed_3b is the paper's 3a):
# (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5 (a 3x3 conv in slim), pool proj).
MIXED_FILTERS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
MIXED_BLOCKS = tuple(MIXED_FILTERS)

# Variables a real training checkpoint also holds; a loader must skip them. Values are
# chosen so that picking one by mistake changes the output (see write_slim_checkpoint).
EXTRA_VARIABLES = (
    "global_step",
    f"{SCOPE}/Conv2d_1a_7x7/weights/ExponentialMovingAverage",
    f"{SCOPE}/Conv2d_1a_7x7/weights/Momentum",
    f"{SCOPE}/Mixed_4b/Branch_1/Conv2d_0b_3x3/BatchNorm/beta/Momentum",
    f"{SCOPE}/Logits/Conv2d_0c_1x1/biases/Momentum",
)


def _mixed_convs(block):
    """(scope relative to the block, kernel size, in-channel index, filters) of a Mixed block.

    The in-channel index says which earlier output feeds the conv: None = the block input,
    otherwise the position of the conv in this list.
    """
    b0, b1a, b1b, b2a, b2b, b3 = MIXED_FILTERS[block]
    # The naming quirk: slim's Mixed_5b calls branch 2's 3x3 "Conv2d_0a_3x3".
    b2_second = "Conv2d_0a_3x3" if block == "Mixed_5b" else "Conv2d_0b_3x3"
    return [
        ("Branch_0/Conv2d_0a_1x1", 1, None, b0),
        ("Branch_1/Conv2d_0a_1x1", 1, None, b1a),
        ("Branch_1/Conv2d_0b_3x3", 3, 1, b1b),
        ("Branch_2/Conv2d_0a_1x1", 1, None, b2a),
        (f"Branch_2/{b2_second}", 3, 3, b2b),
        ("Branch_3/Conv2d_0b_1x1", 1, None, b3),  # after Branch_3/MaxPool_0a_3x3
    ]


def _conv_specs(num_classes=NUM_CLASSES):
    """(scope, kernel, in_channels, out_channels, has_bn) for every conv, in forward order."""
    specs = [
        (f"{SCOPE}/Conv2d_1a_7x7", 7, 3, 64, True),
        (f"{SCOPE}/Conv2d_2b_1x1", 1, 64, 64, True),
        (f"{SCOPE}/Conv2d_2c_3x3", 3, 64, 192, True),
    ]
    channels = 192
    for block in MIXED_BLOCKS:
        outs = []
        for name, k, src, filters in _mixed_convs(block):
            cin = channels if src is None else outs[src]
            specs.append((f"{SCOPE}/{block}/{name}", k, cin, filters, True))
            outs.append(filters)
        # Output = concat of branches 0..3: the last conv of each branch.
        channels = outs[0] + outs[2] + outs[4] + outs[5]
    assert channels == 1024
    specs.append((f"{SCOPE}/Logits/Conv2d_0c_1x1", 1, channels, num_classes, False))
    return specs


def slim_variable_shapes(num_classes=NUM_CLASSES):
    """Every model variable of slim's inception_v1 checkpoint: {exact name: shape tuple}."""
    shapes = {}
    for scope, k, cin, cout, has_bn in _conv_specs(num_classes):
        shapes[f"{scope}/weights"] = (k, k, cin, cout)
        if has_bn:
            for stat in ("beta", "moving_mean", "moving_variance"):
                shapes[f"{scope}/BatchNorm/{stat}"] = (cout,)
        else:
            shapes[f"{scope}/biases"] = (cout,)
    return shapes


VARIABLES = slim_variable_shapes()


def random_slim_variables(seed=0, num_classes=NUM_CLASSES):
    """Random float32 values for slim_variable_shapes(), scaled to stay alive end to end.

    He-normal conv weights keep the pre-BN variance near 1 for ReLU inputs, so BN statistics
    with variance in [0.5, 2] and small non-zero means/betas neither explode nor vanish the
    activations through 20-odd layers. Logit weights are larger so that the softmax over
    1001 classes is clearly peaked without being one-hot.
    """
    rng = np.random.default_rng(seed)
    values = {}
    for scope, k, cin, cout, has_bn in _conv_specs(num_classes):
        fan_in = k * k * cin
        if has_bn:
            std = np.sqrt(2.0 / fan_in)
        else:
            std = 4.0 / np.sqrt(cin)  # logits: spread of a few units over 1001 classes
        values[f"{scope}/weights"] = rng.normal(0.0, std, (k, k, cin, cout))
        if has_bn:
            values[f"{scope}/BatchNorm/beta"] = rng.normal(0.0, 0.2, cout)
            values[f"{scope}/BatchNorm/moving_mean"] = rng.normal(0.0, 0.2, cout)
            values[f"{scope}/BatchNorm/moving_variance"] = rng.uniform(0.5, 2.0, cout)
        else:
            values[f"{scope}/biases"] = rng.normal(0.0, 0.5, cout)
    return {name: v.astype(np.float32) for name, v in values.items()}


def write_slim_checkpoint(prefix, seed=0, num_classes=NUM_CLASSES):
    """Write a random slim-style checkpoint at ``prefix``; return its model variables.

    The files are a V2 bundle (``prefix.index`` + ``prefix.data-00000-of-00001``) keyed by
    plain TF1 variable names, exactly what ``tf.train.load_checkpoint(prefix)`` reads for
    slim's own checkpoints (the published 2016 one is a single V1-format file; the same reader
    takes both). It also holds EXTRA_VARIABLES, which are not in the returned dict: the
    EMA/Momentum copies are the negated weights / shifted values, so a loader that takes
    them gives other outputs.
    """
    values = random_slim_variables(seed, num_classes)
    extras = {"global_step": np.array(123456, np.int64)}
    for name in EXTRA_VARIABLES[1:]:
        base = values[name.rsplit("/", 1)[0]]
        extras[name] = -base if name.endswith("ExponentialMovingAverage") else base + 1.0
    everything = {**values, **extras}
    names = sorted(everything)
    prefix = os.fspath(prefix)
    parent = os.path.dirname(prefix)
    if parent:
        os.makedirs(parent, exist_ok=True)
    # SaveV2 runs eagerly and writes name-keyed tensors with no object graph, i.e. a
    # checkpoint as a TF1 Saver makes it; "" slice specs mean whole (unpartitioned) tensors.
    tf.raw_ops.SaveV2(
        prefix=tf.constant(prefix),
        tensor_names=tf.constant(names),
        shape_and_slices=tf.constant([""] * len(names)),
        tensors=[tf.constant(everything[n]) for n in names],
    )
    return values


def _load(prefix_or_dict):
    """{name: float32 array} of the model variables, from a checkpoint prefix or a dict."""
    if isinstance(prefix_or_dict, dict):
        return {k: np.asarray(v, np.float32) for k, v in prefix_or_dict.items()}
    reader = tf.train.load_checkpoint(os.fspath(prefix_or_dict))
    names = reader.get_variable_to_shape_map()
    num_classes = names[f"{SCOPE}/Logits/Conv2d_0c_1x1/biases"][0]
    return {n: reader.get_tensor(n).astype(np.float32) for n in slim_variable_shapes(num_classes)}


def _conv_bn_relu(x, v, scope, stride=1):
    """slim.conv2d with normalizer_fn=batch_norm(scale=False), at inference."""
    y = tf.nn.conv2d(x, v[f"{scope}/weights"], strides=stride, padding="SAME")
    mean = v[f"{scope}/BatchNorm/moving_mean"]
    var = v[f"{scope}/BatchNorm/moving_variance"]
    y = (y - mean) / tf.sqrt(var + BN_EPSILON) + v[f"{scope}/BatchNorm/beta"]
    return tf.nn.relu(y)


def _max_pool(x, size, stride):
    # SAME max-pooling pads with -inf in effect: padded cells never win.
    return tf.nn.max_pool2d(x, ksize=size, strides=stride, padding="SAME")


def _mixed(x, v, block):
    s = f"{SCOPE}/{block}"
    b2_second = "Conv2d_0a_3x3" if block == "Mixed_5b" else "Conv2d_0b_3x3"
    b0 = _conv_bn_relu(x, v, f"{s}/Branch_0/Conv2d_0a_1x1")
    b1 = _conv_bn_relu(x, v, f"{s}/Branch_1/Conv2d_0a_1x1")
    b1 = _conv_bn_relu(b1, v, f"{s}/Branch_1/Conv2d_0b_3x3")
    b2 = _conv_bn_relu(x, v, f"{s}/Branch_2/Conv2d_0a_1x1")
    b2 = _conv_bn_relu(b2, v, f"{s}/Branch_2/{b2_second}")
    b3 = _max_pool(x, 3, 1)  # Branch_3/MaxPool_0a_3x3
    b3 = _conv_bn_relu(b3, v, f"{s}/Branch_3/Conv2d_0b_1x1")
    return tf.concat([b0, b1, b2, b3], axis=3)


def slim_forward(prefix_or_dict, images):
    """slim's inception_v1 at inference (is_training=False) on NHWC images in [-1, 1].

    ``prefix_or_dict``: a checkpoint prefix (read with tf.train.load_checkpoint) or a
    {name: array} dict as returned by write_slim_checkpoint. Returns slim's end points as
    float32 numpy arrays, keyed by slim's names, in network order: Conv2d_1a_7x7,
    MaxPool_2a_3x3, Conv2d_2b_1x1, Conv2d_2c_3x3, MaxPool_3a_3x3, Mixed_3b, Mixed_3c,
    MaxPool_4a_3x3, Mixed_4b..Mixed_4f, MaxPool_5a_2x2, Mixed_5b, Mixed_5c, AvgPool_0a_7x7,
    Logits (N, num_classes) and Predictions (softmax of Logits).
    """
    v = {k: tf.constant(a) for k, a in _load(prefix_or_dict).items()}
    x = tf.convert_to_tensor(np.asarray(images, np.float32))
    ends = {}

    def end(name, t):
        ends[name] = t
        return t

    x = end("Conv2d_1a_7x7", _conv_bn_relu(x, v, f"{SCOPE}/Conv2d_1a_7x7", stride=2))
    x = end("MaxPool_2a_3x3", _max_pool(x, 3, 2))
    x = end("Conv2d_2b_1x1", _conv_bn_relu(x, v, f"{SCOPE}/Conv2d_2b_1x1"))
    x = end("Conv2d_2c_3x3", _conv_bn_relu(x, v, f"{SCOPE}/Conv2d_2c_3x3"))
    x = end("MaxPool_3a_3x3", _max_pool(x, 3, 2))
    for block in MIXED_BLOCKS:
        if block == "Mixed_4b":
            x = end("MaxPool_4a_3x3", _max_pool(x, 3, 2))
        elif block == "Mixed_5b":
            x = end("MaxPool_5a_2x2", _max_pool(x, 2, 2))
        x = end(block, _mixed(x, v, block))
    # slim: 7x7 VALID average pool (7x7 is the map at 224); other sizes: the global mean,
    # which slim's later global_pool option computes, and which equals the 7x7 pool at 224.
    if tuple(x.shape[1:3]) == (7, 7):
        x = tf.nn.avg_pool2d(x, ksize=7, strides=1, padding="VALID")
    else:
        x = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    x = end("AvgPool_0a_7x7", x)
    # Dropout is the identity at inference; the logits conv has a bias, no BN, no ReLU.
    logits = tf.nn.conv2d(x, v[f"{SCOPE}/Logits/Conv2d_0c_1x1/weights"], 1, "VALID")
    logits = logits + v[f"{SCOPE}/Logits/Conv2d_0c_1x1/biases"]
    logits = end("Logits", tf.squeeze(logits, axis=[1, 2]))
    end("Predictions", tf.nn.softmax(logits, axis=-1))
    return {k: t.numpy() for k, t in ends.items()}


def slim_preprocess(pixels):
    """slim's Inception preprocessing of [0, 255] pixels to [-1, 1] (no resize or crop)."""
    return np.asarray(pixels, np.float32) / 127.5 - 1.0

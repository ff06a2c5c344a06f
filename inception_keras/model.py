"""GoogLeNet (Inception v1), built from a table that reads like Table 1 of the paper.

Reference:
    Szegedy et al., "Going Deeper with Convolutions", CVPR 2015. https://arxiv.org/abs/1409.4842

Every layer carries the paper's name (``conv1``, ``conv2``, ``inception_3a`` ... ``inception_5b``,
``aux1``, ``aux2``, ``fc``), so any block's output is ``model.get_layer("inception_4d").output``
(see :func:`feature_model`).

Where other ports differ from the paper, we follow the paper: torchvision and TF-slim use a 3x3
convolution in the "5x5" branch and torchvision a final dropout of 0.2 and a 2x2 last max-pool,
because their ImageNet weights were trained that way; here the "5x5" branch is 5x5, the dropout 0.4
and every max-pool 3x3/2, as in Table 1.
"""

import dataclasses
import os

import keras

from inception_keras.layers import LocalResponseNormalization

VARIANTS = ("paper", "bn")
# With "same" padding every stage halves the size (rounding up), so any input works in principle;
# below 32 pixels the last stages see a single pixel and the network stops making sense.
MIN_INPUT_SIZE = 32
DEFAULT_INPUT_SIZE = 224

# The paper does not give its initialisation. He-normal is the standard for deep ReLU stacks and
# lets the BN-free "paper" variant train from scratch; biases start at zero.
KERNEL_INITIALIZER = "he_normal"


@dataclasses.dataclass(frozen=True)
class Conv:
    """A convolution + ReLU row of Table 1 (``reduce`` rows are the 1x1 before conv2's 3x3)."""

    name: str
    filters: int
    kernel: int
    stride: int = 1


@dataclasses.dataclass(frozen=True)
class MaxPool:
    name: str
    pool: int = 3
    stride: int = 2


@dataclasses.dataclass(frozen=True)
class LRN:
    """Local response normalisation; dropped by the ``bn`` variant."""

    name: str


@dataclasses.dataclass(frozen=True)
class Inception:
    """One inception block: Table 1's six filter counts, in the paper's column order."""

    name: str
    n1x1: int
    n3x3_reduce: int
    n3x3: int
    n5x5_reduce: int
    n5x5: int
    pool_proj: int

    @property
    def filters(self):
        return (self.n1x1, self.n3x3_reduce, self.n3x3, self.n5x5_reduce, self.n5x5, self.pool_proj)

    @property
    def depth(self):
        """Output channels: the four branches concatenated."""
        return self.n1x1 + self.n3x3 + self.n5x5 + self.pool_proj


# fmt: off
# Table 1 of the paper, top to bottom, up to the classifier.
#               name            #1x1 #3x3red #3x3 #5x5red #5x5 pool proj
TABLE_1 = (
    Conv(       "conv1",         filters=64, kernel=7, stride=2),
    MaxPool(    "pool1"),
    LRN(        "norm1"),
    Conv(       "conv2_reduce",  filters=64, kernel=1),
    Conv(       "conv2",         filters=192, kernel=3),
    LRN(        "norm2"),
    MaxPool(    "pool2"),
    Inception(  "inception_3a",   64,  96, 128, 16,  32,  32),
    Inception(  "inception_3b",  128, 128, 192, 32,  96,  64),
    MaxPool(    "pool3"),
    Inception(  "inception_4a",  192,  96, 208, 16,  48,  64),
    Inception(  "inception_4b",  160, 112, 224, 24,  64,  64),
    Inception(  "inception_4c",  128, 128, 256, 24,  64,  64),
    Inception(  "inception_4d",  112, 144, 288, 32,  64,  64),
    Inception(  "inception_4e",  256, 160, 320, 32, 128, 128),
    MaxPool(    "pool4"),
    Inception(  "inception_5a",  256, 160, 320, 32, 128, 128),
    Inception(  "inception_5b",  384, 192, 384, 48, 128, 128),
)
# fmt: on

# Auxiliary classifiers: the block they sit on, and the paper's head. Section 5 of the paper:
# 5x5/3 average pool, 1x1 conv with 128 filters, FC 1024, dropout 70%, linear + softmax.
AUX_HEADS = {"aux1": "inception_4a", "aux2": "inception_4d"}
AUX_POOL, AUX_POOL_STRIDE, AUX_CONV_FILTERS, AUX_FC_UNITS, AUX_DROPOUT = 5, 3, 128, 1024, 0.7
MAIN_DROPOUT = 0.4
AUX_LOSS_WEIGHT = 0.3  # Section 5: "their loss is added to the total loss with a discount weight"
OUTPUT_NAMES = ("predictions", "aux1", "aux2")


def conv_unit(x, filters, kernel, stride=1, *, name, batch_norm=False):
    """Convolution + ReLU (``batch_norm=True``: convolution without bias + BatchNorm + ReLU).

    The convolution layer is named ``name``; with batch norm, ``name_bn`` and ``name_relu`` follow.
    """
    if not batch_norm:
        return keras.layers.Conv2D(
            filters, kernel, strides=stride, padding="same", activation="relu",
            kernel_initializer=KERNEL_INITIALIZER, name=name,
        )(x)
    x = keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False,
        kernel_initializer=KERNEL_INITIALIZER, name=name,
    )(x)
    # Keras' BatchNormalization default epsilon (1e-3) as in keras.applications' inception_v3.
    x = keras.layers.BatchNormalization(epsilon=1e-3, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def inception_block(x, config, *, name=None, batch_norm=False):
    """One inception block: [1x1] ‖ [1x1 reduce → 3x3] ‖ [1x1 reduce → 5x5] ‖ [3x3 max-pool → 1x1].

    Args:
        x: input tensor, channels last.
        config: an :class:`Inception` row, or the six numbers of Table 1 in its column order
            ``(#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)``.
        name: block name (default ``config.name``); layers are named ``{name}_1x1``,
            ``{name}_3x3_reduce``, ``{name}_3x3``, ``{name}_5x5_reduce``, ``{name}_5x5``,
            ``{name}_pool``, ``{name}_pool_proj`` and the concatenated output ``{name}``.
        batch_norm: add BatchNorm after each convolution (the ``bn`` variant).

    Returns:
        The block output with ``#1x1 + #3x3 + #5x5 + pool proj`` channels.
    """
    if not isinstance(config, Inception):
        if len(config) != 6:
            raise ValueError(
                "`config` must be an Inception row or six filter counts "
                f"(#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj); got {config!r}."
            )
        config = Inception(name or "inception", *config)
    name = name or config.name
    if any(int(f) != f or f < 1 for f in config.filters):
        raise ValueError(f"`config` filter counts must be positive integers; got {config.filters}.")

    def conv(y, filters, kernel, suffix):
        return conv_unit(y, filters, kernel, name=f"{name}_{suffix}", batch_norm=batch_norm)

    branch_1x1 = conv(x, config.n1x1, 1, "1x1")
    branch_3x3 = conv(conv(x, config.n3x3_reduce, 1, "3x3_reduce"), config.n3x3, 3, "3x3")
    branch_5x5 = conv(conv(x, config.n5x5_reduce, 1, "5x5_reduce"), config.n5x5, 5, "5x5")
    pooled = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch_pool = conv(pooled, config.pool_proj, 1, "pool_proj")
    return keras.layers.Concatenate(axis=-1, name=name)(
        [branch_1x1, branch_3x3, branch_5x5, branch_pool]
    )


def aux_head(x, classes, *, name, batch_norm=False, classifier_activation="softmax"):
    """An auxiliary classifier (training only): 5x5/3 avg pool → 1x1 conv 128 → FC 1024 →
    dropout 0.7 → linear → activation. 4x4x128 before the FC at a 224 input.

    Feature maps smaller than the 5x5 window (inputs under ~80 pixels) are pooled with a window of
    their own size, so the head still builds and trains at small inputs.
    """
    size = min(int(x.shape[1]), int(x.shape[2]), AUX_POOL)
    x = keras.layers.AveragePooling2D(size, strides=AUX_POOL_STRIDE, name=f"{name}_pool")(x)
    x = conv_unit(x, AUX_CONV_FILTERS, 1, name=f"{name}_conv", batch_norm=batch_norm)
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    x = keras.layers.Dense(
        AUX_FC_UNITS, activation="relu", kernel_initializer=KERNEL_INITIALIZER, name=f"{name}_fc1"
    )(x)
    x = keras.layers.Dropout(AUX_DROPOUT, name=f"{name}_dropout")(x)
    x = keras.layers.Dense(classes, name=f"{name}_fc2")(x)
    # float32 output even under a mixed-precision policy, for a numerically safe softmax and loss.
    return keras.layers.Activation(classifier_activation, dtype="float32", name=name)(x)


def GoogLeNet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    aux_logits=False,
    variant="paper",
    name="googlenet",
):
    """Instantiates GoogLeNet (Inception v1) as in Table 1 of Szegedy et al., CVPR 2015.

    Input convention: float RGB pixels in [0, 255], channels last. The model rescales them to
    [-1, 1] itself (layer ``rescale``), so every exported artefact also takes raw pixels.

    Args:
        include_top: whether to include the classifier (global average pool, dropout 0.4, ``fc``
            and the ``predictions`` activation).
        weights: ``None`` (random initialisation) or the path to a weights file saved with
            ``model.save_weights`` from a model built with the same arguments. No pretrained
            ImageNet weights exist for this exact (paper) architecture.
        input_tensor: optional Keras tensor (output of ``keras.Input``) to use as image input.
        input_shape: optional ``(height, width, 3)``; default ``(224, 224, 3)``. Height and width
            must be at least 32 (``MIN_INPUT_SIZE``) or ``None`` (any size; not with
            ``aux_logits=True``, whose fully-connected layers need a fixed size).
        pooling: feature pooling when ``include_top=False``: ``None`` (4D output of
            ``inception_5b``), ``"avg"`` or ``"max"`` (2D output).
        classes: number of classes (``include_top=True`` only).
        classifier_activation: activation of the ``predictions`` layer (a string or callable);
            ``None`` or ``"linear"`` returns logits.
        aux_logits: add the two auxiliary classifiers on ``inception_4a`` and ``inception_4d``.
            The model then has three outputs ``[predictions, aux1, aux2]`` (the paper's training
            setup, losses weighted 1, 0.3, 0.3); :func:`inference_model` strips them again.
        variant: ``"paper"`` (Table 1 exactly, with LRN) or ``"bn"`` (BatchNorm after every
            convolution, no LRN).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"`variant` must be one of {VARIANTS}; got {variant!r}.")
    if weights is not None and not os.path.exists(str(weights)):
        raise ValueError(
            f"`weights` must be None or the path to an existing weights file; got {weights!r} "
            "(file not found)."
        )
    if include_top:
        if pooling is not None:
            raise ValueError(
                f"`pooling` applies only with include_top=False (the top has its own global "
                f"average pool); got pooling={pooling!r} with include_top=True."
            )
        if int(classes) != classes or classes < 1:
            raise ValueError(f"`classes` must be a positive integer; got {classes!r}.")
    else:
        if pooling not in (None, "avg", "max"):
            raise ValueError(f"`pooling` must be None, 'avg' or 'max'; got {pooling!r}.")
        if aux_logits:
            raise ValueError("`aux_logits` must be False with include_top=False: the aux heads are "
                             "classifiers.")

    img_input = _input_layer(input_tensor, input_shape, aux_logits)
    batch_norm = variant == "bn"
    aux_inputs = {}

    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(img_input)
    for row in TABLE_1:
        if isinstance(row, Conv):
            x = conv_unit(x, row.filters, row.kernel, row.stride, name=row.name, batch_norm=batch_norm)
        elif isinstance(row, MaxPool):
            x = keras.layers.MaxPooling2D(row.pool, strides=row.stride, padding="same", name=row.name)(x)
        elif isinstance(row, LRN):
            if not batch_norm:
                x = LocalResponseNormalization(name=row.name)(x)
        else:
            x = inception_block(x, row, batch_norm=batch_norm)
        for head, block in AUX_HEADS.items():
            if row.name == block:
                aux_inputs[head] = x

    if include_top:
        # Table 1's "avg pool 7x7/1" is a global average pool at 224; global at any size.
        x = keras.layers.GlobalAveragePooling2D(name="pool5")(x)
        x = keras.layers.Dropout(MAIN_DROPOUT, name="dropout")(x)
        x = keras.layers.Dense(classes, kernel_initializer=KERNEL_INITIALIZER, name="fc")(x)
        x = keras.layers.Activation(classifier_activation, dtype="float32", name="predictions")(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="pool5")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="pool5")(x)

    outputs = x
    if aux_logits:
        outputs = [x] + [
            aux_head(aux_inputs[head], classes, name=head, batch_norm=batch_norm,
                     classifier_activation=classifier_activation)
            for head in AUX_HEADS
        ]

    inputs = keras.utils.get_source_inputs(input_tensor) if input_tensor is not None else img_input
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        model.load_weights(weights)
    return model


def _input_layer(input_tensor, input_shape, aux_logits):
    """Validates ``input_shape`` / ``input_tensor`` and returns the image input tensor."""
    if input_tensor is not None:
        if not keras.backend.is_keras_tensor(input_tensor):
            raise ValueError(
                f"`input_tensor` must be a Keras tensor (from keras.Input); got {type(input_tensor)}."
            )
        shape = tuple(input_tensor.shape[1:])
        if input_shape is not None and tuple(input_shape) != shape:
            raise ValueError(
                f"`input_shape` {tuple(input_shape)} disagrees with `input_tensor`'s shape {shape}."
            )
        input_shape = shape
    elif input_shape is None:
        input_shape = (DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE, 3)

    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[2] != 3:
        raise ValueError(
            f"`input_shape` must be (height, width, 3) for channels-last RGB; got {input_shape}."
        )
    for size in input_shape[:2]:
        if size is None:
            if aux_logits:
                raise ValueError(
                    f"`input_shape` {input_shape} has an unknown size: with aux_logits=True the aux "
                    "heads' fully-connected layers need a fixed height and width."
                )
        elif size < MIN_INPUT_SIZE:
            raise ValueError(
                f"`input_shape` {input_shape} is too small: height and width must be at least "
                f"{MIN_INPUT_SIZE}."
            )
    if input_tensor is not None:
        return input_tensor
    return keras.Input(shape=input_shape, name="images")


def inference_model(model):
    """The model without aux heads, in float32: one output, ``predictions``, the same weights.

    Dropout is inactive whenever the model is called for inference (``training=False``, the
    default of ``predict``, ``model.export`` and the converters), so no layer needs removing.
    A model built under a mixed-precision policy (``--precision mixed_bfloat16``) comes back as
    float32 copies of its layers holding the same weights: TFLite and ONNX have no bfloat16
    kernels, and the exports and the reference they are verified against compute the same thing.
    Otherwise the layers are the model's own. Every exporter and runner uses this.
    """
    if len(model.outputs) != 1:
        model = keras.Model(model.inputs, model.get_layer("predictions").output, name=model.name)
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model

    def as_float32(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=as_float32)
    copy.set_weights(model.get_weights())
    return copy


def feature_model(model, end_points):
    """A model whose outputs are the named blocks' outputs (TF-slim's end points).

    Args:
        model: a GoogLeNet model.
        end_points: layer names, e.g. ``["inception_3b", "inception_4e", "pool5"]``.

    Returns:
        A ``keras.Model`` with a dict output keyed by those names.
    """
    names = [layer.name for layer in model.layers]
    unknown = [n for n in end_points if n not in names]
    if unknown:
        raise ValueError(f"`end_points` {unknown} are not layers of {model.name!r}.")
    return keras.Model(model.inputs, {n: model.get_layer(n).output for n in end_points})

"""GoogLeNet (Inception v1), built from a table that reads like Table 1 of the paper.

Reference:
    Szegedy et al., "Going Deeper with Convolutions", CVPR 2015. https://arxiv.org/abs/1409.4842

Every layer carries the paper's name (``conv1``, ``conv2``, ``inception_3a`` ... ``inception_5b``,
``aux1``, ``aux2``, ``fc``), so any block's output is ``model.get_layer("inception_4d").output``
(see :func:`feature_model`).

The network comes in variants (:data:`VARIANTS`), each a handful of named choices read by the one
builder. ``"paper"`` is Table 1 exactly, with the semantics of the BVLC Caffe model its authors' lab
published (so those ImageNet weights load unchanged); ``"slim"`` is TF-slim's (and torchvision's)
Inception v1, which differs from the paper where its ImageNet weights were trained differently: a
3x3 convolution in the "5x5" branch, BatchNorm, a 2x2 last max-pool and a final dropout of 0.2.
"""

import keras

from inception_keras import pretrained
from inception_keras.architecture import (  # noqa: F401 (re-exported: the model's tables)
    AUX_CONV_FILTERS,
    AUX_DROPOUT,
    AUX_FC_UNITS,
    AUX_HEADS,
    AUX_LOSS_WEIGHT,
    AUX_POOL,
    AUX_POOL_STRIDE,
    CAFFE_INPUT_SCALE,
    CAFFE_MEAN_RGB,
    LAST_POOL,
    LRN,
    OUTPUT_NAMES,
    TABLE_1,
    VARIANTS,
    Conv,
    Inception,
    MaxPool,
    Variant,
    get_variant,
)
from inception_keras.defaults import IMAGENET_CLASSES, INPUT_SIZE
from inception_keras.deprecation import renamed_arguments
from inception_keras.errors import UsageError
from inception_keras.layers import BatchNormalization, Conv2D, LocalResponseNormalization

# With "same" padding every stage halves the size (rounding up), so any input works in principle;
# below 32 pixels the last stages see a single pixel and the network stops making sense.
MIN_INPUT_SIZE = 32
DEFAULT_INPUT_SIZE = INPUT_SIZE


def conv_unit(x, filters, kernel, stride=1, *, name, variant="paper", batch_norm=None):
    """Convolution + ReLU, or for a BatchNorm variant convolution without bias + BatchNorm + ReLU.

    The convolution layer is named ``name``; with batch norm, ``name_bn`` and ``name_relu`` follow.
    ``batch_norm=True`` is short for the ``"bn"`` variant.
    """
    variant = _resolve_variant(variant, batch_norm)
    if not variant.batch_norm:
        return Conv2D(
            filters,
            kernel,
            strides=stride,
            padding="same",
            activation="relu",
            kernel_initializer=variant.initializer,
            name=name,
        )(x)
    x = Conv2D(
        filters,
        kernel,
        strides=stride,
        padding="same",
        use_bias=False,
        kernel_initializer=variant.initializer,
        name=name,
    )(x)
    # epsilon 1e-3: Keras' default, and TF-slim's (its checkpoint's statistics assume it).
    x = BatchNormalization(epsilon=1e-3, scale=variant.bn_scale, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def _resolve_variant(variant, batch_norm):
    if batch_norm is not None:  # the older spelling of variant="bn"
        return VARIANTS["bn" if batch_norm else "paper"]
    return get_variant(variant)


def inception_block(x, config, *, name=None, variant="paper", batch_norm=None, naive=None):
    """One inception block: [1x1] ‖ [1x1 reduce → 3x3] ‖ [1x1 reduce → 5x5] ‖ [3x3 max-pool → 1x1].

    With ``naive=True``, the paper's naive module (Figure 2(a)) from the same row instead:
    [1x1] ‖ [3x3] ‖ [5x5] ‖ [3x3 max-pool], each convolution straight on the input and the pool
    passed through without a projection; the reduce and pool proj counts are not used.

    Args:
        x: input tensor, channels last.
        config: an :class:`Inception` row, or the six numbers of Table 1 in its column order
            ``(#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)``.
        name: block name (default ``config.name``); layers are named ``{name}_1x1``,
            ``{name}_3x3_reduce``, ``{name}_3x3``, ``{name}_5x5_reduce``, ``{name}_5x5``,
            ``{name}_pool``, ``{name}_pool_proj`` and the concatenated output ``{name}`` (naive:
            no ``_reduce`` or ``_pool_proj`` layers).
        variant: a name from :data:`VARIANTS` or a :class:`Variant`: BatchNorm or not, and the
            third branch's kernel (``"slim"``'s "5x5" branch is a 3x3, named ``{name}_5x5`` still).
        batch_norm: ``True`` is short for ``variant="bn"``.
        naive: build the naive module; ``None`` (default): as the variant says (only ``"naive"``
            has naive blocks), so ``False`` for every other variant.

    Returns:
        The block output with ``#1x1 + #3x3 + #5x5 + pool proj`` channels; naive:
        ``#1x1 + #3x3 + #5x5 +`` the input's channels.
    """
    if not isinstance(config, Inception):
        if len(config) != 6:
            raise UsageError(
                "`config` must be an Inception row or six filter counts "
                f"(#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj); got {config!r}."
            )
        config = Inception(name or "inception", *config)
    name = name or config.name
    if any(int(f) != f or f < 1 for f in config.filters):
        raise UsageError(f"`config` filter counts must be positive integers; got {config.filters}.")
    variant = _resolve_variant(variant, batch_norm)
    if naive is None:
        naive = variant.naive_blocks
    elif not isinstance(naive, bool):
        raise UsageError(f"`naive` must be True, False or None; got {naive!r}.")

    def conv(y, filters, kernel, suffix):
        return conv_unit(y, filters, kernel, name=f"{name}_{suffix}", variant=variant)

    def reduced(y, filters, suffix):  # the naive module convolves the input itself
        return y if naive else conv(y, filters, 1, suffix)

    branch_1x1 = conv(x, config.n1x1, 1, "1x1")
    branch_3x3 = conv(reduced(x, config.n3x3_reduce, "3x3_reduce"), config.n3x3, 3, "3x3")
    branch_5x5 = conv(
        reduced(x, config.n5x5_reduce, "5x5_reduce"), config.n5x5, variant.kernel_5x5, "5x5"
    )
    pooled = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch_pool = pooled if naive else conv(pooled, config.pool_proj, 1, "pool_proj")
    return keras.layers.Concatenate(axis=-1, name=name)(
        [branch_1x1, branch_3x3, branch_5x5, branch_pool]
    )


def aux_head(
    x, classes, *, name, variant="paper", batch_norm=None, classifier_activation="softmax"
):
    """An auxiliary classifier (training only): 5x5/3 avg pool → 1x1 conv 128 → FC 1024 →
    dropout 0.7 → linear → activation. 4x4x128 before the FC at a 224 input.

    Feature maps smaller than the 5x5 window (inputs under ~80 pixels) are pooled with a window of
    their own size, so the head still builds and trains at small inputs.
    """
    size = min(int(x.shape[1]), int(x.shape[2]), AUX_POOL)
    x = keras.layers.AveragePooling2D(size, strides=AUX_POOL_STRIDE, name=f"{name}_pool")(x)
    variant = _resolve_variant(variant, batch_norm)
    x = conv_unit(x, AUX_CONV_FILTERS, 1, name=f"{name}_conv", variant=variant)
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    x = keras.layers.Dense(
        AUX_FC_UNITS, activation="relu", kernel_initializer=variant.initializer, name=f"{name}_fc1"
    )(x)
    x = keras.layers.Dropout(AUX_DROPOUT, name=f"{name}_dropout")(x)
    x = keras.layers.Dense(classes, name=f"{name}_fc2")(x)
    # float32 output even under a mixed-precision policy, for a numerically safe softmax and loss.
    return keras.layers.Activation(classifier_activation, dtype="float32", name=name)(x)


def _stem_conv1(x, row, variant):
    """conv1. Caffe pads 3 on every side; TF's "same" pads 2 before and 3 after at even sizes,
    which shifts every output by a pixel against the BVLC weights."""
    if variant.caffe_padding:
        pad = row.kernel // 2
        x = keras.layers.ZeroPadding2D(pad, name=f"{row.name}_pad")(x)
        # Keras' own layer: this package's Conv2D speeds up stride-1 "same" convolutions only, and
        # saved checkpoints store this layer's weights under Keras' class name.
        return keras.layers.Conv2D(
            row.filters,
            row.kernel,
            strides=row.stride,
            padding="valid",
            activation="relu",
            kernel_initializer=variant.initializer,
            name=row.name,
        )(x)
    return conv_unit(x, row.filters, row.kernel, row.stride, name=row.name, variant=variant)


def _max_pool(x, pool, stride, name, caffe_padding):
    """A strided max-pool. Caffe rounds the output size up without padding the front; TF's
    "same" gives the same windows when the input size is even, so that is used where it can be.
    Elsewhere one zero row and column at the end make "valid" round up too; that is exact here
    because every pool follows a ReLU (or LRN of a ReLU), so no real value is below the zero."""
    sizes = [x.shape[1], x.shape[2]]
    if not caffe_padding or all(s is not None and _same_is_ceil(s, pool, stride) for s in sizes):
        return keras.layers.MaxPooling2D(pool, strides=stride, padding="same", name=name)(x)
    x = keras.layers.ZeroPadding2D(((0, stride - 1), (0, stride - 1)), name=f"{name}_pad")(x)
    return keras.layers.MaxPooling2D(pool, strides=stride, padding="valid", name=name)(x)


def _same_is_ceil(size, pool, stride):
    """Whether TF's "same" pooling of ``size`` equals Caffe's round-up pooling."""
    ceil_out = -(-(size - pool) // stride) + 1
    same_out = -(-size // stride)
    same_pad_before = max((same_out - 1) * stride + pool - size, 0) // 2
    return ceil_out == same_out and same_pad_before == 0


def _input_scaling(x, variant):
    if variant.input_scaling == "caffe":
        # Constants rather than a Normalization layer's variables, which ONNX export would
        # turn into model inputs.
        scale = 1.0 / CAFFE_INPUT_SCALE
        offset = [-m * scale for m in CAFFE_MEAN_RGB]
        return keras.layers.Rescaling(scale, offset=offset, name="rescale")(x)
    return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(x)


@renamed_arguments(aux_logits="include_aux")  # torchvision's name; ours are not logits
def GoogLeNet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=IMAGENET_CLASSES,
    classifier_activation="softmax",
    include_aux=False,
    variant="paper",
    name="googlenet",
):
    """Instantiates GoogLeNet (Inception v1) as in Table 1 of Szegedy et al., CVPR 2015.

    Input convention: float RGB pixels in [0, 255], channels last, whatever the variant. The model
    normalises them itself (layer ``rescale``), so every exported artefact also takes raw pixels.

    Args:
        include_top: whether to include the classifier (global average pool, dropout, ``fc`` and
            the ``predictions`` activation).
        weights: ``None`` (random initialisation); ``"imagenet"``: the published ImageNet weights
            of the variant, downloaded once and converted (``"paper"``: BVLC's Caffe GoogLeNet,
            ``"slim"``: TF-slim's Inception v1; see :mod:`inception_keras.pretrained`); or a
            path: a ``.caffemodel``, a TF-slim checkpoint prefix, a ``.keras`` model, or a file
            saved with ``model.save_weights`` from a model built with the same arguments.
            Pretrained weights need ``classes=1000`` with the top; the aux heads' and the
            classifier's weights need a 224x224 input (the convolutions load at any size).
        input_tensor: optional Keras tensor (output of ``keras.Input``) to use as image input.
        input_shape: optional ``(height, width, 3)``; default ``(224, 224, 3)``. Height and width
            must be at least 32 (``MIN_INPUT_SIZE``) or ``None`` (any size; not with
            ``include_aux=True``, whose fully-connected layers need a fixed size).
        pooling: feature pooling when ``include_top=False``: ``None`` (4D output of
            ``inception_5b``), ``"avg"`` or ``"max"`` (2D output).
        classes: number of classes (``include_top=True`` only).
        classifier_activation: activation of the ``predictions`` layer (a string or callable);
            ``None`` or ``"linear"`` returns logits.
        include_aux: add the two auxiliary classifiers on ``inception_4a`` and ``inception_4d``.
            The model then has three outputs ``[predictions, aux1, aux2]`` (the paper's training
            setup, losses weighted 1, 0.3, 0.3), the aux heads ending in
            ``classifier_activation`` like the main one; :func:`inference_model` strips them
            again. (``aux_logits``, torchvision's name, is accepted as a deprecated alias.)
        variant: a name from :data:`VARIANTS`: ``"paper"`` (Table 1 with LRN, Caffe's padding and
            input mean), ``"bn"`` (BatchNorm after every convolution, no LRN), ``"slim"``
            (TF-slim's Inception v1) or ``"naive"`` (``"paper"`` with the naive modules of the
            paper's Figure 2(a) as its blocks: ~14x the weights, no published weights).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    spec = get_variant(variant)
    if include_top:
        if pooling is not None:
            raise UsageError(
                f"`pooling` applies only with include_top=False (the top has its own global "
                f"average pool); got pooling={pooling!r} with include_top=True."
            )
        if int(classes) != classes or classes < 1:
            raise UsageError(f"`classes` must be a positive integer; got {classes!r}.")
    else:
        if pooling not in (None, "avg", "max"):
            raise UsageError(f"`pooling` must be None, 'avg' or 'max'; got {pooling!r}.")
        if include_aux:
            raise UsageError(
                "`include_aux` must be False with include_top=False: the aux heads are classifiers."
            )
    source = pretrained.check_weights_argument(
        weights, spec.name, include_top, classes, include_aux
    )

    img_input = _input_layer(input_tensor, input_shape, include_aux)
    aux_inputs = {}

    x = _input_scaling(img_input, spec)
    for row in TABLE_1:
        if isinstance(row, Conv) and row.name == "conv1":
            x = _stem_conv1(x, row, spec)
        elif isinstance(row, Conv):
            x = conv_unit(x, row.filters, row.kernel, row.stride, name=row.name, variant=spec)
        elif isinstance(row, MaxPool):
            window = spec.last_pool if row.name == LAST_POOL else row.pool
            x = _max_pool(x, window, row.stride, row.name, spec.caffe_padding)
        elif isinstance(row, LRN):
            if spec.lrn:
                x = LocalResponseNormalization(name=row.name)(x)
        else:
            x = inception_block(x, row, variant=spec)
        for head, block in AUX_HEADS.items():
            if row.name == block:
                aux_inputs[head] = x

    if include_top:
        # Table 1's "avg pool 7x7/1" is a global average pool at 224; global at any size.
        x = keras.layers.GlobalAveragePooling2D(name="pool5")(x)
        x = keras.layers.Dropout(spec.dropout, name="dropout")(x)
        x = keras.layers.Dense(classes, kernel_initializer=spec.initializer, name="fc")(x)
        x = keras.layers.Activation(classifier_activation, dtype="float32", name="predictions")(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="pool5")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="pool5")(x)

    outputs = x
    if include_aux:
        outputs = [x] + [
            aux_head(
                aux_inputs[head],
                classes,
                name=head,
                variant=spec,
                classifier_activation=classifier_activation,
            )
            for head in AUX_HEADS
        ]

    inputs = keras.utils.get_source_inputs(input_tensor) if input_tensor is not None else img_input
    model = keras.Model(inputs, outputs, name=name)
    if source is not None:
        pretrained.load_into(model, source)
    return model


def _input_layer(input_tensor, input_shape, include_aux):
    """Validates ``input_shape`` / ``input_tensor`` and returns the image input tensor."""
    if input_tensor is not None:
        if not keras.backend.is_keras_tensor(input_tensor):
            raise UsageError(
                "`input_tensor` must be a Keras tensor (from keras.Input); got "
                f"{type(input_tensor)}."
            )
        shape = tuple(input_tensor.shape[1:])
        if input_shape is not None and tuple(input_shape) != shape:
            raise UsageError(
                f"`input_shape` {tuple(input_shape)} disagrees with `input_tensor`'s shape {shape}."
            )
        input_shape = shape
    elif input_shape is None:
        input_shape = (DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE, 3)

    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[2] != 3:
        raise UsageError(
            f"`input_shape` must be (height, width, 3) for channels-last RGB; got {input_shape}."
        )
    for size in input_shape[:2]:
        if size is None:
            if include_aux:
                raise UsageError(
                    f"`input_shape` {input_shape} has an unknown size: with include_aux=True the "
                    "aux "
                    "heads' fully-connected layers need a fixed height and width."
                )
        elif size < MIN_INPUT_SIZE:
            raise UsageError(
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
        raise UsageError(f"`end_points` {unknown} are not layers of {model.name!r}.")
    return keras.Model(model.input, {n: model.get_layer(n).output for n in end_points})

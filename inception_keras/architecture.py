"""The architecture as data: Table 1 of the paper, the auxiliary heads, and the variants.

Reference:
    Szegedy et al., "Going Deeper with Convolutions", CVPR 2015. https://arxiv.org/abs/1409.4842

Nothing here builds layers; :mod:`inception_keras.model` reads these tables, and the weight
converters (:mod:`inception_keras.pretrained`) map published layer names onto the same names.
"""

import dataclasses

from inception_keras.errors import UsageError

# Input scalings (the model takes RGB pixels in [0, 255] and normalises them in its graph):
# "caffe" subtracts the ImageNet mean the BVLC model was trained with and divides by
# CAFFE_INPUT_SCALE; "inception" maps to [-1, 1]. Caffe feeds BGR pixels minus the mean, unscaled:
# the converter reverses conv1's input channels and multiplies its kernel by CAFFE_INPUT_SCALE, so
# the converted model computes Caffe's function exactly, while a model trained from scratch sees
# inputs of about unit scale, which the He initialisation expects.
CAFFE_MEAN_RGB = (123.0, 117.0, 104.0)
CAFFE_INPUT_SCALE = 127.5
INPUT_SCALINGS = ("caffe", "inception")


@dataclasses.dataclass(frozen=True)
class Variant:
    """The choices that tell the published Inception v1 networks apart.

    Attributes:
        name: the variant's name (``GoogLeNet(variant=name)``).
        batch_norm: convolution without bias, then BatchNorm, then ReLU (else convolution + ReLU).
        bn_scale: whether BatchNorm learns a scale (gamma); TF-slim's has none.
        lrn: the two local response normalisations of the stem.
        kernel_5x5: the kernel size of the third ("5x5") branch of every inception block.
        last_pool: the window of ``pool4``, the max-pool before ``inception_5a`` (stride 2).
        caffe_padding: conv1 pads 3 pixels on every side and max-pools round their output size
            up, as Caffe does; otherwise TensorFlow's ``"same"`` padding everywhere.
        input_scaling: ``"caffe"`` or ``"inception"`` (see :data:`INPUT_SCALINGS`).
        dropout: dropout rate before the classifier.
        initializer: the kernels' initialisation (biases start at zero). The paper gives none;
            He-normal is the standard for deep ReLU stacks and lets the BN-free variants train
            from scratch.
        naive_blocks: every inception block is the paper's naive module (Figure 2(a)): the
            ``#1x1``, ``#3x3`` and ``#5x5`` convolutions straight on the block's input and the
            3x3 max-pool passed through unprojected, so each block's depth adds to its input's.
            The paper shows it to motivate the 1x1 reductions of Figure 2(b), which Table 1 uses.
    """

    name: str
    batch_norm: bool
    lrn: bool
    input_scaling: str
    bn_scale: bool = True
    kernel_5x5: int = 5
    last_pool: int = 3
    caffe_padding: bool = False
    dropout: float = 0.4
    initializer: str = "he_normal"
    naive_blocks: bool = False


VARIANTS = {
    v.name: v
    for v in (
        # Table 1 with the BVLC Caffe model's semantics (its published weights load as they are).
        Variant(
            "paper",
            batch_norm=False,
            lrn=True,
            input_scaling="caffe",
            caffe_padding=True,
        ),
        # Table 1 with BatchNorm after every convolution instead of LRN.
        Variant("bn", batch_norm=True, lrn=False, input_scaling="inception"),
        # TF-slim's inception_v1 (torchvision's googlenet is a port of it): differs from the
        # paper in the "5x5" kernel, BN without scale, the 2x2 last max-pool and dropout 0.2.
        Variant(
            "slim",
            batch_norm=True,
            lrn=False,
            input_scaling="inception",
            bn_scale=False,
            kernel_5x5=3,
            last_pool=2,
            dropout=0.2,
        ),
        # The paper variant with Figure 2(a)'s naive modules in place of every inception block:
        # what the 1x1 reductions save (``inception-keras summary --compare-naive``). No
        # published weights; far larger and slower than Table 1's network.
        Variant(
            "naive",
            batch_norm=False,
            lrn=True,
            input_scaling="caffe",
            caffe_padding=True,
            naive_blocks=True,
        ),
    )
}


def get_variant(variant):
    """A :class:`Variant` from its name (or itself); ``ValueError`` naming the choices."""
    if isinstance(variant, Variant):
        return variant
    if variant not in VARIANTS:
        raise UsageError(f"`variant` must be one of {tuple(VARIANTS)}; got {variant!r}.")
    return VARIANTS[variant]


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
LAST_POOL = "pool4"  # the max-pool before inception_5a (2x2 in TF-slim)
AUX_LOSS_WEIGHT = 0.3  # Section 5: "their loss is added to the total loss with a discount weight"
OUTPUT_NAMES = ("predictions", "aux1", "aux2")

# The block Grad-CAM weighs by default: the last block before pool4, 14x14 at a 224 input (7x7
# after it is coarse, earlier blocks see less of the image).
GRAD_CAM_LAYER = "inception_4e"

# The layer `features` reads by default: the global average pool the classifier reads (1024
# values per image).
FEATURES_LAYER = "pool5"

# The four branches of an inception block in the order they are concatenated, by Table 1's column
# of their output channels (the naive module's fourth branch is the unprojected pool).
BRANCHES = ("#1x1", "#3x3", "#5x5", "pool proj")
NAIVE_BRANCHES = ("#1x1", "#3x3", "#5x5", "pool")


def branch_widths(naive=False):
    """``{block name: (channels of each branch, in concatenation order)}`` for the nine blocks.

    Read from :data:`TABLE_1`: ``(#1x1, #3x3, #5x5, pool proj)``; with ``naive=True`` (Figure
    2(a)'s modules, the ``"naive"`` variant) the pool branch passes the block's whole input
    through, so its width is the depth of the row before (``conv2``'s filters, or the previous
    naive block's output).
    """
    widths, depth = {}, None
    for row in TABLE_1:
        if isinstance(row, Conv):
            depth = row.filters
        elif isinstance(row, Inception):
            widths[row.name] = (row.n1x1, row.n3x3, row.n5x5, depth if naive else row.pool_proj)
            depth = sum(widths[row.name])
    return widths

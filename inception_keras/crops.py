"""The crops of single- and multi-crop evaluation (Section 7 of Szegedy et al., "Going Deeper
with Convolutions"), and where each comes from.

Three crop schemes, selected by the number of crops per image:

* ``crops=1``: one central crop keeping ``crop_fraction`` (0.875) of each side, resized to
  ``S x S``. This is the single-crop evaluation transform of :mod:`inception_keras.preprocessing`
  (``tf.image.central_crop`` then a bilinear resize).
* ``crops=10``: the classic 10-crop: the shorter side is resized to ``round(S * 256 / 224)``, then
  the four corner and the centre ``S x S`` crops and their mirrors.
* ``crops=144``: the paper's scheme: the shorter side is resized to 256, 288, 320 and 352 (scaled by
  ``S / 224`` for other input sizes), three squares of side = shorter side are taken (left, centre
  and right; top, centre and bottom for portrait images), and from each square the four corner and
  the centre ``S x S`` crops plus the whole square resized to ``S x S``, each with its mirror:
  4 scales x 3 squares x 6 crops x 2 = 144.

Crop order (deterministic, the same for every image): scale (ascending), square (left/top, centre,
right/bottom), position (``top_left``, ``top_right``, ``bottom_left``, ``bottom_right``,
``centre``, ``whole``), then mirror (unmirrored, mirrored). So crop ``2 * i + 1`` is the mirror of
crop ``2 * i``. :func:`crop_boxes` lists the regions in that order.

:func:`multi_crop` is pure TensorFlow (it runs eagerly, in ``tf.function`` and inside
``tf.data`` map functions, on images of unknown size); :func:`crop_boxes` lists the regions.
:mod:`inception_keras.evaluation` scores them.
"""

import dataclasses
import operator
import typing

import tensorflow as tf

from inception_keras import preprocessing
from inception_keras.deprecation import renamed_arguments
from inception_keras.errors import UsageError
from inception_keras.preprocessing_config import CROP_SCHEMES, DEFAULT_CROP_FRACTION

# The paper's sizes are given for a 224 input; other input sizes scale them proportionally.
REFERENCE_IMAGE_SIZE = 224
REFERENCE_INPUT_SIZE = REFERENCE_IMAGE_SIZE  # its former name
CORNERS_AND_CENTRE = ("top_left", "top_right", "bottom_left", "bottom_right", "centre")
WHOLE = "whole"  # the whole window (square, or central region for crops=1) resized to S x S


@dataclasses.dataclass(frozen=True)
class _Scheme:
    """A multi-crop scheme: shorter sides at a 224 input, windows, crop positions in a window."""

    shorter_sides: tuple
    squares: bool  # three squares per scale (the paper) or the whole resized image (10-crop)
    positions: tuple


_MULTI_CROP_SCHEMES = {
    10: _Scheme((256,), squares=False, positions=CORNERS_AND_CENTRE),
    144: _Scheme((256, 288, 320, 352), squares=True, positions=CORNERS_AND_CENTRE + (WHOLE,)),
}


@dataclasses.dataclass(frozen=True)
class CropBox:
    """Where one crop comes from.

    The image is first resized to ``resized_height x resized_width`` (its shorter side becomes
    ``scale``; for ``crops=1`` there is no resize and ``scale`` is the original shorter side). In
    that resized image, ``window_*`` is the square the crop is taken from (the whole image for
    ``crops=10``, the central region for ``crops=1``) and ``top, left, height, width`` the crop
    itself, in absolute resized-image pixels. The crop is resized to ``S x S`` (a no-op for the
    ``S x S`` corner and centre crops) and flipped left-right if ``mirrored``.
    """

    index: int
    scale: int
    resized_height: int
    resized_width: int
    window_top: int
    window_left: int
    window_height: int
    window_width: int
    position: str  # one of CORNERS_AND_CENTRE or WHOLE
    top: int
    left: int
    height: int
    width: int
    mirrored: bool


def num_crops(crops):
    """Number of crops per image of a scheme (validates it): 1, 10 or 144."""
    if crops not in CROP_SCHEMES:
        raise UsageError(f"`crops` must be one of {CROP_SCHEMES}; got {crops!r}.")
    return int(crops)


@renamed_arguments(central_fraction="crop_fraction", input_size="image_size")
def multi_crop(
    image, crops=1, image_size=REFERENCE_IMAGE_SIZE, crop_fraction=DEFAULT_CROP_FRACTION
):
    """The evaluation crops of one image, in the module's crop order.

    Args:
        image: one decoded RGB image ``[H, W, 3]``, ``uint8`` or float in [0, 255], any size and
            aspect ratio (the size may be unknown until run time).
        crops: 1, 10 or 144 (see the module docstring).
        image_size: side ``S`` of the square crops (the model's input size).
        crop_fraction: fraction of each side kept by the ``crops=1`` central crop.

    Returns:
        float32 ``[crops, S, S, 3]`` with values in [0, 255].
    """
    size = check_crop_args(crops, image_size, crop_fraction)
    image = tf.convert_to_tensor(image)
    if image.shape.rank != 3 or image.shape[-1] not in (3, None):
        raise UsageError(
            f"`image` must be one RGB image [height, width, 3]; got shape {image.shape}."
        )
    # Channels unknown until run time (e.g. tf.data from a generator): check them then.
    image = tf.ensure_shape(tf.cast(image, tf.float32), [None, None, 3])
    if crops == 1:  # the one eval transform that training, predict and export share
        return preprocessing.eval_transform(image, size, crop_fraction)[tf.newaxis]
    shape = tf.shape(image)

    outputs = []
    for resized_size, regions in _layout(shape[0], shape[1], crops, size, crop_fraction):
        # One resize per scale. The S x S crops are then plain slices, exact copies of the resized
        # pixels (tf.image.crop_and_resize would resample them with its own sampling grid).
        resized = image if resized_size is None else tf.image.resize(image, resized_size)
        for region in regions:
            box = tf.slice(resized, [region.top, region.left, 0], [region.height, region.width, 3])
            if region.position == WHOLE:
                box = tf.image.resize(box, [size, size])
            outputs.append(box)
    batch = tf.stack(outputs)
    if _mirrored(crops):
        # Each crop followed by its mirror: crop 2i+1 is crop 2i flipped.
        batch = tf.stack([batch, tf.image.flip_left_right(batch)], axis=1)
        batch = tf.reshape(batch, [-1, size, size, 3])
    # Bilinear resampling cannot overshoot, but float inputs may lie outside [0, 255].
    return tf.clip_by_value(batch, 0.0, 255.0)


@renamed_arguments(central_fraction="crop_fraction", input_size="image_size")
def crop_boxes(
    height,
    width,
    crops=1,
    image_size=REFERENCE_IMAGE_SIZE,
    crop_fraction=DEFAULT_CROP_FRACTION,
):
    """The regions :func:`multi_crop` takes from a ``height x width`` image: a list of
    :class:`CropBox`, in crop order. Runs eagerly.
    """
    size = check_crop_args(crops, image_size, crop_fraction)
    if min(operator.index(height), operator.index(width)) < 1:
        raise UsageError(f"`height` and `width` must be positive; got {height} x {width}.")
    boxes = []
    for _, regions in _layout(tf.constant(height), tf.constant(width), crops, size, crop_fraction):
        for region in regions:
            for mirrored in (False, True) if _mirrored(crops) else (False,):
                fields = {k: int(v) for k, v in region._asdict().items() if k != "position"}
                boxes.append(
                    CropBox(index=len(boxes), position=region.position, mirrored=mirrored, **fields)
                )
    return boxes


def _mirrored(crops):
    """Whether a scheme adds the mirror of every crop (all but the single central crop)."""
    return crops != 1


class _Region(typing.NamedTuple):
    """An unmirrored crop, fields as in :class:`CropBox`; the numbers are int32 scalar tensors
    or Python ints."""

    scale: object
    resized_height: object
    resized_width: object
    window_top: object
    window_left: object
    window_height: object
    window_width: object
    position: str
    top: object
    left: object
    height: object
    width: object


def _layout(height, width, crops, size, crop_fraction):
    """The unmirrored crops of an ``height x width`` image (int32 scalar tensors), grouped by
    resize: a list of ``(resized_size, regions)``, ``resized_size`` ``None`` for "no resize".

    The only description of the schemes' geometry: :func:`multi_crop` cuts these regions and
    :func:`crop_boxes` reports them.
    """
    if crops == 1:
        top, left, crop_height, crop_width = _central_window(height, width, crop_fraction)
        region = _Region(
            tf.minimum(height, width),
            height,
            width,
            top,
            left,
            crop_height,
            crop_width,
            WHOLE,
            top,
            left,
            crop_height,
            crop_width,
        )
        return [(None, [region])]

    scheme = _MULTI_CROP_SCHEMES[crops]
    groups = []
    for shorter_side in scheme.shorter_sides:
        # round(), not int(): the paper's sizes are 256..352 at 224, so 96 gives 110, 123, 137, 151.
        scale = round(size * shorter_side / REFERENCE_IMAGE_SIZE)
        resized_height, resized_width = _shorter_side_to(height, width, scale)
        if scheme.squares:
            windows = _three_squares(resized_height, resized_width)
        else:
            windows = [(0, 0, resized_height, resized_width)]
        regions = []
        for window in windows:
            for position in scheme.positions:
                box = window if position == WHOLE else _square_in(window, position, size)
                regions.append(
                    _Region(scale, resized_height, resized_width, *window, position, *box)
                )
        groups.append(((resized_height, resized_width), regions))
    return groups


def _central_window(height, width, fraction):
    """(top, left, height, width) of ``tf.image.central_crop(image, fraction)``, by its formula:
    offsets rounded down in float64, size = side - 2 * offset."""

    def offset(side):
        side = tf.cast(side, tf.float64)
        return tf.cast((side - side * fraction) / 2, tf.int32)

    top, left = offset(height), offset(width)
    return top, left, height - 2 * top, width - 2 * left


def _shorter_side_to(height, width, scale):
    """Size with the shorter side ``scale`` and the aspect ratio kept (longer side rounded)."""
    ratio = scale / tf.cast(tf.minimum(height, width), tf.float64)
    new_height = tf.cast(tf.round(tf.cast(height, tf.float64) * ratio), tf.int32)
    new_width = tf.cast(tf.round(tf.cast(width, tf.float64) * ratio), tf.int32)
    return new_height, new_width


def _three_squares(height, width):
    """Windows (top, left, side, side) of the first, centre and last square of side = shorter
    side along the longer side: left/centre/right (landscape) or top/centre/bottom (portrait)."""
    side = tf.minimum(height, width)
    slack_y, slack_x = height - side, width - side  # one of them is 0
    return [
        (0, 0, side, side),
        (slack_y // 2, slack_x // 2, side, side),
        (slack_y, slack_x, side, side),
    ]


def _square_in(window, position, size):
    """(top, left, size, size) of a corner or the centre ``size x size`` crop of a window."""
    top, left, height, width = window
    slack_y, slack_x = height - size, width - size
    offsets = {
        "top_left": (0, 0),
        "top_right": (0, slack_x),
        "bottom_left": (slack_y, 0),
        "bottom_right": (slack_y, slack_x),
        "centre": (slack_y // 2, slack_x // 2),
    }
    dy, dx = offsets[position]
    return top + dy, left + dx, size, size


def check_crop_args(crops, image_size, crop_fraction):
    """Validates the crop arguments; returns ``image_size`` as an int."""
    num_crops(crops)
    try:
        size = operator.index(image_size)
    except TypeError:
        size = 0
    if size < 1:
        raise UsageError(f"`image_size` must be a positive integer; got {image_size!r}.")
    if not 0 < crop_fraction <= 1:
        raise UsageError(f"`crop_fraction` must be in (0, 1]; got {crop_fraction!r}.")
    return size

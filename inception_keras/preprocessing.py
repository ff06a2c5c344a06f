"""Image preprocessing shared by training, evaluation, prediction and export.

Everything here is a pure TensorFlow function on single (unbatched) images,
so the same definition runs inside a ``tf.data`` pipeline and inside an
exported SavedModel graph.

Contract
--------
* :func:`decode_image` turns encoded bytes (JPEG, PNG, BMP, GIF - first frame
  only) into a ``uint8`` RGB tensor ``[H, W, 3]``. Grey images are replicated
  to three channels, alpha is dropped, CMYK JPEGs are converted to RGB.
* :func:`train_transform` and :func:`eval_transform` take that ``uint8``
  image (any size) and return ``float32`` RGB ``[S, S, 3]`` with values in
  ``[0, 255]``. **No mean subtraction or scaling happens here** - the model
  rescales its input internally, so a raw 0-255 image is its input contract.
* Training randomness is stateless: every random op takes an explicit
  ``seed`` (a shape ``[2]`` integer tensor), so a pipeline that derives seeds
  deterministically reproduces the exact same batches.

The training transform follows the GoogLeNet paper (Szegedy et al. 2015,
section 6): random crops covering 8-100% of the image area with aspect ratio
in [3/4, 4/3], resized with a randomly chosen interpolation method, random
horizontal flips and photometric distortions (Howard 2013) applied in random
order. Evaluation uses a single central crop keeping 87.5% of each side.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from inception_keras.errors import UsageError

#: Fraction of each side kept by the evaluation central crop (224 / 256).
DEFAULT_CROP_FRACTION = 0.875

#: Interpolation methods the paper samples from with equal probability.
PAPER_RESIZE_METHODS = ("bilinear", "area", "nearest", "bicubic")


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Parameters of :func:`train_transform`; the defaults are the paper's.

    Attributes:
        area_range: Min/max fraction of the image area covered by the crop.
        aspect_ratio_range: Min/max crop width/height ratio.
        max_attempts: Crop proposals tried before falling back to the whole
            image (``tf.image.sample_distorted_bounding_box`` semantics).
        resize_methods: ``tf.image.resize`` methods, one picked per image.
        flip: Randomly mirror left-right.
        brightness_delta: Max additive brightness change, in [0, 1] units.
        contrast_range: Contrast factor range (``(1, 1)`` disables).
        saturation_range: Saturation factor range (``(1, 1)`` disables).
        hue_delta: Max hue rotation as a fraction of the colour circle.
    """

    area_range: tuple[float, float] = (0.08, 1.0)
    aspect_ratio_range: tuple[float, float] = (3 / 4, 4 / 3)
    max_attempts: int = 100
    resize_methods: tuple[str, ...] = PAPER_RESIZE_METHODS
    flip: bool = True
    # Photometric strengths commonly used with Howard's distortions.
    brightness_delta: float = 32 / 255
    contrast_range: tuple[float, float] = (0.5, 1.5)
    saturation_range: tuple[float, float] = (0.5, 1.5)
    hue_delta: float = 0.2

    def __post_init__(self):
        lo, hi = self.area_range
        if not 0 < lo <= hi <= 1:
            raise UsageError(f"area_range must satisfy 0 < min <= max <= 1, got {self.area_range}")
        lo, hi = self.aspect_ratio_range
        if not 0 < lo <= hi:
            raise UsageError(
                f"aspect_ratio_range must satisfy 0 < min <= max, got {self.aspect_ratio_range}"
            )
        for name in ("contrast_range", "saturation_range"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise UsageError(f"{name} must satisfy 0 <= min <= max, got {(lo, hi)}")
        if not 0 <= self.hue_delta <= 0.5:
            raise UsageError(f"hue_delta must be in [0, 0.5], got {self.hue_delta}")
        if self.brightness_delta < 0:
            raise UsageError(f"brightness_delta must be >= 0, got {self.brightness_delta}")
        if not self.resize_methods:
            raise UsageError("resize_methods must name at least one tf.image.resize method")


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """Decodes JPEG/PNG/BMP/GIF bytes to a ``uint8`` RGB image ``[H, W, 3]``.

    ``tf.io.decode_image`` already handles grey -> RGB, RGBA -> RGB, CMYK
    JPEG -> RGB and picks the first GIF frame (``expand_animations=False``).
    Invalid data raises ``InvalidArgumentError`` at run time; the data
    pipeline skips and counts such files.
    """
    image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def _resize(image: tf.Tensor, image_size: int, method: str) -> tf.Tensor:
    """Resizes to a square ``float32`` image (inputs are cast first so every
    method, including ``nearest``, returns float32)."""
    return tf.image.resize(tf.cast(image, tf.float32), [image_size, image_size], method=method)


def eval_transform(
    image: tf.Tensor, image_size: int, crop_fraction: float = DEFAULT_CROP_FRACTION
) -> tf.Tensor:
    """Central crop then bilinear resize; returns float32 ``[S, S, 3]`` in [0, 255].

    The crop keeps ``crop_fraction`` of each side, centred (offsets rounded
    down, as ``tf.image.central_crop`` does).
    """
    if not 0 < crop_fraction <= 1:
        raise UsageError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
    image = _resize(tf.image.central_crop(image, crop_fraction), image_size, "bilinear")
    return tf.clip_by_value(image, 0.0, 255.0)


def random_crop_box(image_shape: tf.Tensor, seed: tf.Tensor, config: AugmentConfig):
    """Samples ``(begin, size)`` of a crop per ``config.area_range`` and
    ``config.aspect_ratio_range`` (whole image if no proposal fits)."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        image_shape,
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        # The "object" is the whole image, so this is the min crop area.
        min_object_covered=config.area_range[0],
        aspect_ratio_range=config.aspect_ratio_range,
        area_range=config.area_range,
        max_attempts=config.max_attempts,
        use_image_if_no_bounding_boxes=True,
    )
    return begin, size


def _photometric_ops(config: AugmentConfig, seeds: tf.Tensor) -> list:
    """The enabled distortions as closures on a float image in [0, 1].

    A zero strength drops the op (TF rejects empty factor ranges)."""
    b, c, s, h = (seeds[i] for i in range(4))
    ops = []
    if config.brightness_delta > 0:
        ops.append(lambda x: tf.image.stateless_random_brightness(x, config.brightness_delta, b))
    if config.contrast_range[0] < config.contrast_range[1]:
        ops.append(lambda x: tf.image.stateless_random_contrast(x, *config.contrast_range, c))
    if config.saturation_range[0] < config.saturation_range[1]:
        ops.append(lambda x: tf.image.stateless_random_saturation(x, *config.saturation_range, s))
    if config.hue_delta > 0:
        ops.append(lambda x: tf.image.stateless_random_hue(x, config.hue_delta, h))
    return ops


def photometric_distort(image: tf.Tensor, seed: tf.Tensor, config: AugmentConfig) -> tf.Tensor:
    """Brightness, contrast, saturation and hue jitter in a random order.

    ``image`` is float in [0, 1]; the result is clipped back to [0, 1].
    """
    seeds = tf.random.experimental.stateless_split(seed, num=5)
    ops = _photometric_ops(config, seeds)
    if not ops:
        return image
    order = tf.argsort(tf.random.stateless_uniform([len(ops)], seeds[4]))
    for position in range(len(ops)):
        # switch_case keeps a single graph for every one of the 24 orders.
        image = tf.switch_case(order[position], [lambda op=op, x=image: op(x) for op in ops])
        image = tf.clip_by_value(image, 0.0, 1.0)
    return image


def train_transform(
    image: tf.Tensor,
    seed: tf.Tensor,
    image_size: int,
    config: AugmentConfig = AugmentConfig(),
) -> tf.Tensor:
    """Paper-style training augmentation of one ``uint8`` image.

    Args:
        image: ``uint8`` RGB ``[H, W, 3]`` (e.g. from :func:`decode_image`).
        seed: shape ``[2]`` int32/int64 tensor; equal seeds give equal outputs.
        image_size: side ``S`` of the square output.
        config: crop ranges and distortion strengths.

    Returns:
        float32 ``[S, S, 3]`` with values in [0, 255].
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=4)
    begin, size = random_crop_box(tf.shape(image), seeds[0], config)
    image = tf.slice(image, begin, size)

    methods = config.resize_methods
    pick = tf.random.stateless_uniform([], seeds[1], 0, len(methods), dtype=tf.int32)
    image = tf.switch_case(pick, [lambda m=m: _resize(image, image_size, m) for m in methods])
    image.set_shape([image_size, image_size, 3])

    if config.flip:
        image = tf.image.stateless_random_flip_left_right(image, seeds[2])
    image = photometric_distort(tf.clip_by_value(image / 255.0, 0.0, 1.0), seeds[3], config)
    return image * 255.0


def decode_for_eval(
    encoded: tf.Tensor, image_size: int, crop_fraction: float = DEFAULT_CROP_FRACTION
) -> tf.Tensor:
    """Encoded bytes -> eval-preprocessed float32 image (for predict/export)."""
    return eval_transform(decode_image(encoded), image_size, crop_fraction)

"""The settings of the shared image preprocessing, without TensorFlow: the training augmentation
(:class:`AugmentConfig`), the evaluation crops and the decoding limits.

:mod:`inception_keras.preprocessing` applies them (and re-exports them); they live apart so that the
command line's ``--help`` and a configuration built in Python read them without importing
TensorFlow.
"""

import dataclasses

from inception_keras.errors import UsageError

#: Fraction of each side kept by the evaluation central crop (224 / 256).
DEFAULT_CROP_FRACTION = 0.875

#: Crops per image that :func:`inception_keras.evaluation.multi_crop` knows: the central crop,
#: ten (corners, centre and their mirrors) and the paper's 144.
CROP_SCHEMES = (1, 10, 144)

#: Interpolation methods the paper samples from with equal probability.
PAPER_RESIZE_METHODS = ("bilinear", "area", "nearest", "bicubic")

#: Largest encoded image accepted, in bytes. ImageNet's largest JPEGs are a few MB; anything
#: beyond this is not a plausible photograph (and is read into memory whole).
MAX_IMAGE_BYTES = 64 * 2**20

#: Largest image accepted, in pixels (width x height, every frame of an animated GIF counted, as
#: TensorFlow's GIF decoder decompresses them all), read from the header before decoding. 64
#: megapixels (8000 x 8000) decode to 192 MB of RGB; ImageNet photos average 0.2 megapixels.
MAX_IMAGE_PIXELS = 64_000_000

#: The formats :func:`~inception_keras.preprocessing.decode_image` accepts. ``tf.io.decode_image``
#: also reads WebP and JPEG XL, whose sizes that module does not parse, so those are refused rather
#: than decoded unbounded.
SUPPORTED_FORMATS = "JPEG, PNG, GIF or BMP"


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Parameters of :func:`~inception_keras.preprocessing.train_transform`; the defaults are the
    paper's.

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


def check_image_limits(max_image_bytes, max_image_pixels):
    """Refuses decoding limits that are not positive integers (``UsageError`` naming the field)."""
    for name, value in (
        ("max_image_bytes", max_image_bytes),
        ("max_image_pixels", max_image_pixels),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{name} must be a positive integer, got {value!r}")

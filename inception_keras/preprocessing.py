"""Image preprocessing shared by training, evaluation, prediction and export.

Everything here is a pure TensorFlow function on single (unbatched) images,
so the same definition runs inside a ``tf.data`` pipeline and inside an
exported SavedModel graph.

Contract
--------
* :func:`decode_image` turns encoded bytes (JPEG, PNG, BMP, GIF - first frame
  only) into a ``uint8`` RGB tensor ``[H, W, 3]``. Grey images are replicated
  to three channels, alpha is dropped, CMYK JPEGs are converted to RGB.
  Decoding is bounded: :func:`image_problem` reads the size from the image's
  header first and refuses (``InvalidArgumentError`` naming the limit) more
  than :data:`MAX_IMAGE_BYTES` encoded bytes or :data:`MAX_IMAGE_PIXELS`
  pixels, and any other format, so a small "decompression bomb" file cannot
  allocate gigabytes.
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

import tensorflow as tf

from inception_keras.deprecation import renamed_arguments
from inception_keras.errors import UsageError
from inception_keras.preprocessing_config import (  # noqa: F401 (re-exported: the settings)
    DEFAULT_CROP_FRACTION,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    PAPER_RESIZE_METHODS,
    SUPPORTED_FORMATS,
    AugmentConfig,
)


def _unsigned(data: tf.Tensor, start: int, count: int, big_endian: bool = False) -> tf.Tensor:
    """The ``count``-byte unsigned integer at ``data[start:]`` (int64 bytes) as int64."""
    weights = [256**i for i in range(count)]
    return tf.reduce_sum(data[start : start + count] * (weights[::-1] if big_endian else weights))


def _header(encoded: tf.Tensor, length: int) -> tf.Tensor:
    """The first ``length`` bytes as int64, zero-padded when the data is shorter."""
    head = tf.cast(tf.io.decode_raw(tf.strings.substr(encoded, 0, length), tf.uint8), tf.int64)
    return tf.pad(head, [[0, length - tf.size(head)]])


def _gif_size(encoded: tf.Tensor):
    """``(frames, width, height)`` of a GIF's canvas, walking its blocks.

    TensorFlow decodes every frame, onto a canvas as large as the largest frame, so neither the
    logical screen in the header nor the first frame bounds the memory. Extensions and image data
    come as chains of sub-blocks of at most 255 bytes each, followed through their length bytes.
    """
    data = tf.io.decode_raw(encoded, tf.uint8)  # one byte each: reading never copies more
    end = tf.size(data, out_type=tf.int64)

    def window(position, count):  # reads past the end repeat the last byte; the walk then stops
        index = tf.minimum(position + tf.range(count, dtype=tf.int64), end - 1)
        return tf.cast(tf.gather(data, index), tf.int64)

    def byte(position):
        return tf.cast(tf.gather(data, tf.minimum(position, end - 1)), tf.int64)

    def table_size(flags):  # a colour table follows when bit 7 is set: 3 * 2^(size + 1) bytes
        size = 3 * tf.bitwise.left_shift(tf.constant(2, tf.int64), tf.bitwise.bitwise_and(flags, 7))
        return tf.where(tf.bitwise.bitwise_and(flags, 0x80) > 0, size, tf.constant(0, tf.int64))

    def skip_sub_blocks(position):  # to just past the chain's zero-length terminator
        (last,) = tf.while_loop(
            lambda p: tf.logical_and(p < end, byte(p) > 0),
            lambda p: (p + 1 + byte(p),),
            (position,),
        )
        return last + 1

    def step(position, done, frames, width, height):
        block = window(position, 10)
        extension, image = tf.equal(block[0], 0x21), tf.equal(block[0], 0x2C)
        # Image descriptor: left, top, width, height (little-endian 16 bit), flags, then the
        # local colour table and the LZW code size byte; an extension: its label.
        right = block[1] + 256 * block[2] + block[5] + 256 * block[6]
        bottom = block[3] + 256 * block[4] + block[7] + 256 * block[8]
        data_start = tf.where(extension, position + 2, position + 11 + table_size(block[9]))
        block_or_image = tf.logical_or(extension, image)
        following = tf.cond(block_or_image, lambda: skip_sub_blocks(data_start), lambda: end)
        return (
            following,
            tf.logical_not(block_or_image),  # the trailer, or something unknown: stop
            frames + tf.cast(image, tf.int64),
            tf.where(image, tf.maximum(width, right), width),
            tf.where(image, tf.maximum(height, bottom), height),
        )

    screen = window(6, 5)
    _, _, frames, width, height = tf.while_loop(
        lambda position, done, *_: tf.logical_and(tf.logical_not(done), position < end),
        step,
        (
            13 + table_size(screen[4]),
            tf.constant(False),
            tf.constant(0, tf.int64),
            screen[0] + 256 * screen[1],
            screen[2] + 256 * screen[3],
        ),
    )
    return tf.maximum(frames, 1), width, height


# Just the markers tf.image.extract_jpeg_shape reads (start, a 1x1 frame, a scan, end), given to it
# in place of data that is not a JPEG: the check then needs no branch for JPEGs, and in a tf.data
# pipeline every branch costs each image, taken or not.
_ONE_PIXEL_JPEG = (
    b"\xff\xd8\xff\xc0\x00\x0b\x08\x00\x01\x00\x01\x01\x01\x11\x00"
    b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00\xff\xd9"
)


def _image_size(encoded: tf.Tensor, readable: tf.Tensor):
    """``(format, frames, width, height)`` from the header; format 0 is unsupported. Where
    ``readable`` is false (data over the byte limit) only the first bytes are looked at."""
    head = _header(encoded, 26)
    magic = tf.strings.substr(encoded, 0, 8)
    signatures = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"BM"]  # TF's own checks
    jpeg, _, gif, _ = matches = [
        tf.equal(tf.strings.substr(magic, 0, len(s)), s) for s in signatures
    ]
    # The signatures are disjoint: at most one matches.
    kind = tf.reduce_max(tf.stack([tf.where(m, i + 1, 0) for i, m in enumerate(matches)]))

    # JPEG: the frame header (SOF), found by libjpeg without decoding any pixels.
    jpeg_shape = tf.image.extract_jpeg_shape(
        tf.where(tf.logical_and(jpeg, readable), encoded, _ONE_PIXEL_JPEG)
    )
    jpeg_shape = tf.cast(jpeg_shape, tf.int64)

    # BMP: BITMAPINFOHEADER's signed 32-bit width and height (negative: top-down rows).
    def signed(start):
        value = _unsigned(head, start, 4)
        return tf.abs(tf.where(value >= 2**31, value - 2**32, value))

    zero = tf.constant(0, tf.int64)
    gif_frames, gif_width, gif_height = tf.cond(
        tf.logical_and(gif, readable), lambda: _gif_size(encoded), lambda: (zero, zero, zero)
    )
    # Candidates in the order of ``signatures``, after 0 for an unsupported format; PNG's come
    # from IHDR, the first chunk (big-endian).
    width = tf.stack(
        [zero, jpeg_shape[1], _unsigned(head, 16, 4, big_endian=True), gif_width, signed(18)]
    )[kind]
    height = tf.stack(
        [zero, jpeg_shape[0], _unsigned(head, 20, 4, big_endian=True), gif_height, signed(22)]
    )[kind]
    return kind, tf.where(gif, gif_frames, 1), width, height


@renamed_arguments(max_bytes="max_image_bytes", max_pixels="max_image_pixels")
def image_problem(
    encoded: tf.Tensor,
    max_image_bytes: int = MAX_IMAGE_BYTES,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
) -> tf.Tensor:
    """Why ``encoded`` must not be decoded, as a scalar string tensor; empty when it may be.

    Checks, without decoding, that the data is at most ``max_image_bytes`` long, is a JPEG, PNG,
    GIF or BMP, and that its header's width x height (x frames, for a GIF) is at most
    ``max_image_pixels``.
    Data the header check passes may still be corrupt: the decoder then fails on it.
    """
    if max_image_bytes < 1 or max_image_pixels < 1:
        raise UsageError(
            "image size limits must be positive: "
            f"max_image_bytes={max_image_bytes}, max_image_pixels={max_image_pixels}"
        )
    encoded = tf.convert_to_tensor(encoded, tf.string)
    size = tf.cast(tf.strings.length(encoded), tf.int64)
    kind, frames, width, height = _image_size(encoded, size <= max_image_bytes)
    over_bytes, unsupported = size > max_image_bytes, tf.equal(kind, 0)
    over_pixels = frames * width * height > max_image_pixels

    def explain():  # only for a refused image: formatting costs each image otherwise
        text = tf.strings.as_string
        dimensions = tf.strings.join([text(width), "x", text(height), " pixels"])
        if_frames = tf.strings.join([text(frames), " frames of ", dimensions])
        return tf.where(
            over_bytes,
            tf.strings.join(
                ["image is ", text(size), f" bytes, over the limit of {max_image_bytes} bytes"]
            ),
            tf.where(
                unsupported,
                f"cannot be decoded as an image: not {SUPPORTED_FORMATS} data",
                tf.strings.join(
                    [
                        "image is ",
                        tf.where(frames > 1, if_frames, dimensions),
                        f", over the limit of {max_image_pixels} pixels",
                    ]
                ),
            ),
        )

    refused = tf.reduce_any([over_bytes, unsupported, over_pixels])
    return tf.cond(refused, explain, lambda: tf.constant(""))


def decode_checked(encoded: tf.Tensor, problem: tf.Tensor) -> tf.Tensor:
    """Decodes ``encoded`` if ``problem`` (from :func:`image_problem`) is empty; otherwise fails
    with ``InvalidArgumentError`` carrying ``problem`` before anything is decoded."""
    if tf.executing_eagerly() and problem.numpy():  # the message alone, not the assertion's
        raise tf.errors.InvalidArgumentError(None, None, problem.numpy().decode())
    check = tf.debugging.Assert(tf.equal(problem, ""), [problem])
    with tf.control_dependencies([check]):
        image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


@renamed_arguments(max_bytes="max_image_bytes", max_pixels="max_image_pixels")
def decode_image(
    encoded: tf.Tensor,
    max_image_bytes: int = MAX_IMAGE_BYTES,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
) -> tf.Tensor:
    """Decodes JPEG/PNG/BMP/GIF bytes to a ``uint8`` RGB image ``[H, W, 3]``.

    ``tf.io.decode_image`` already handles grey -> RGB, RGBA -> RGB, CMYK
    JPEG -> RGB and picks the first GIF frame (``expand_animations=False``).
    Invalid data, another format, or an image over ``max_image_bytes`` encoded bytes
    or ``max_image_pixels`` pixels (see :func:`image_problem`) raises
    ``InvalidArgumentError`` at run time; the data pipeline skips and counts
    such files.
    """
    return decode_checked(encoded, image_problem(encoded, max_image_bytes, max_image_pixels))


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


@renamed_arguments(max_bytes="max_image_bytes", max_pixels="max_image_pixels")
def decode_for_eval(
    encoded: tf.Tensor,
    image_size: int,
    crop_fraction: float = DEFAULT_CROP_FRACTION,
    max_image_bytes: int = MAX_IMAGE_BYTES,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
) -> tf.Tensor:
    """Encoded bytes -> eval-preprocessed float32 image (for predict/export)."""
    return eval_transform(
        decode_image(encoded, max_image_bytes, max_image_pixels), image_size, crop_fraction
    )

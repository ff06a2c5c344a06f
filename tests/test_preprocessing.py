"""Tests of inception_keras.preprocessing: decoding and the two transforms.

No PIL is available, so BMP, GIF and CMYK-JPEG test files are produced by
the tiny byte writers below (JPEG/PNG use TensorFlow's own encoders).
"""

import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf

from inception_keras import preprocessing as pp


# --------------------------------------------------------------------------
# Minimal image writers (test-only; just enough of each format).
# --------------------------------------------------------------------------
def encode_bmp(rgb: np.ndarray) -> bytes:
    """24-bit uncompressed BMP (bottom-up rows, BGR, rows padded to 4 bytes)."""
    height, width, _ = rgb.shape
    row = width * 3
    pad = (-row) % 4
    pixels = b"".join(rgb[y, :, ::-1].tobytes() + b"\0" * pad for y in range(height - 1, -1, -1))
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


def _lzw_literals(indices: np.ndarray) -> bytes:
    """GIF LZW stream using only literal codes; a clear code every 250
    symbols keeps the code width at 9 bits, so no dictionary is needed."""
    clear, end = 256, 257
    codes = []
    for start in range(0, len(indices), 250):
        codes.append(clear)
        codes.extend(int(i) for i in indices[start : start + 250])
    codes.append(end)
    bits = 0
    nbits = 0
    out = bytearray()
    for code in codes:
        bits |= code << nbits
        nbits += 9
        while nbits >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            nbits -= 8
    if nbits:
        out.append(bits & 0xFF)
    return bytes(out)


def encode_gif(frames: list) -> bytes:
    """GIF89a with a global 256-colour palette built from the frames' colours."""
    height, width, _ = frames[0].shape
    colours, inverse = np.unique(
        np.concatenate([f.reshape(-1, 3) for f in frames]), axis=0, return_inverse=True
    )
    assert len(colours) <= 256
    palette = np.zeros((256, 3), np.uint8)
    palette[: len(colours)] = colours
    out = bytearray(
        b"GIF89a" + struct.pack("<HHBBB", width, height, 0xF7, 0, 0) + palette.tobytes()
    )
    inverse = inverse.reshape(len(frames), -1)
    for indices in inverse:
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x08"
        data = _lzw_literals(indices)
        for start in range(0, len(data), 255):
            chunk = data[start : start + 255]
            out += bytes([len(chunk)]) + chunk
        out += b"\x00"
    return bytes(out + b"\x3b")


def encode_flat_jpeg(blocks: np.ndarray, adobe_cmyk: bool = False) -> bytes:
    """Baseline JPEG whose 8x8 blocks are flat: ``blocks`` is [BH, BW, C]
    (one value per block and component, C in 1..4). Only DC coefficients are
    coded, which keeps the encoder to a few lines. ``adobe_cmyk`` adds the
    Adobe APP14 marker (transform 0) that marks 4 components as CMYK."""
    bh, bw, nc = blocks.shape

    def segment(marker, payload):
        return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload

    dc_bits = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]  # standard luminance DC table
    dc_vals = list(range(12))
    codes, code = {}, 0
    for length, count in enumerate(dc_bits, start=1):
        for _ in range(count):
            codes[dc_vals[len(codes)]] = (code, length)
            code += 1
        code <<= 1
    out = b"\xff\xd8"
    if adobe_cmyk:
        out += segment(0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 0))
    out += segment(0xDB, b"\x00" + b"\x01" * 64)  # all-ones quantisation table
    out += segment(
        0xC0,
        struct.pack(">BHHB", 8, bh * 8, bw * 8, nc)
        + b"".join(bytes([i + 1, 0x11, 0]) for i in range(nc)),
    )
    out += segment(0xC4, b"\x00" + bytes(dc_bits) + bytes(dc_vals))
    out += segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00")  # AC table: only EOB, code "0"
    out += segment(
        0xDA, bytes([nc]) + b"".join(bytes([i + 1, 0]) for i in range(nc)) + b"\x00\x3f\x00"
    )
    bitstring = []
    predictor = [0] * nc
    for y in range(bh):
        for x in range(bw):
            for c in range(nc):
                dc = 8 * (int(blocks[y, x, c]) - 128)  # DCT DC term of a flat block
                diff, predictor[c] = dc - predictor[c], dc
                size = abs(diff).bit_length()
                code, length = codes[size]
                bitstring.append(format(code, f"0{length}b"))
                if size:
                    bitstring.append(
                        format(diff if diff > 0 else diff + (1 << size) - 1, f"0{size}b")
                    )
                bitstring.append("0")  # EOB
    bits = "".join(bitstring)
    bits += "1" * ((-len(bits)) % 8)
    data = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))
    return out + data.replace(b"\xff", b"\xff\x00") + b"\xff\xd9"


def png_bomb(side: int) -> bytes:
    """A decompression bomb: a grey PNG of ``side`` x ``side`` zeros; 9000 pixels a side decode
    to 81 MB (243 MB as RGB) from a file of about 80 kB."""
    compressor = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte + pixels
    pixels = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()

    def chunk(kind, payload):
        crc = struct.pack(">I", zlib.crc32(kind + payload))
        return struct.pack(">I", len(payload)) + kind + payload + crc

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------
# decode_image
# --------------------------------------------------------------------------
RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (9, 11, 3), dtype=np.uint8)


def _decode(data: bytes) -> np.ndarray:
    image = pp.decode_image(tf.constant(data))
    assert image.dtype == tf.uint8 and image.shape.rank == 3 and image.shape[-1] == 3
    return image.numpy()


def test_decode_png_rgb_and_rgba():
    assert np.array_equal(_decode(tf.io.encode_png(RGB).numpy()), RGB)
    rgba = np.concatenate([RGB, RNG.integers(0, 256, (9, 11, 1), dtype=np.uint8)], axis=-1)
    assert np.array_equal(_decode(tf.io.encode_png(rgba).numpy()), RGB)  # alpha dropped


def test_decode_grey_png_and_jpeg_become_rgb():
    grey = RGB[..., :1]
    assert np.array_equal(_decode(tf.io.encode_png(grey).numpy()), np.repeat(grey, 3, axis=-1))
    flat = np.array([[[30], [220]]], np.uint8)  # two flat 8x8 blocks: lossless even as JPEG
    decoded = _decode(encode_flat_jpeg(flat))
    assert decoded.shape == (8, 16, 3)
    assert np.array_equal(decoded[0, 0], [30, 30, 30]) and np.array_equal(decoded[0, 15], [220] * 3)


def test_decode_rgb_jpeg():
    smooth = _coordinate_image(16, 24) * 8  # JPEG is lossy: use a smooth image
    decoded = _decode(tf.io.encode_jpeg(smooth, quality=100, chroma_downsampling=False).numpy())
    assert decoded.shape == smooth.shape
    assert np.abs(decoded.astype(int) - smooth).max() <= 8


def test_decode_cmyk_jpeg_to_rgb():
    # Adobe CMYK JPEGs store inverted ink values, so RGB = stored_c * stored_k / 255.
    cmyk = np.array([[[200, 50, 0, 255], [200, 100, 30, 128]]], np.uint8)
    decoded = _decode(encode_flat_jpeg(cmyk, adobe_cmyk=True))
    assert decoded.shape == (8, 16, 3)
    for block in range(2):
        c, m, y, k = cmyk[0, block].astype(float)
        expected = np.array([c, m, y]) * k / 255
        assert np.allclose(decoded[4, 8 * block + 4], expected, atol=2)


def test_decode_bmp():
    assert np.array_equal(_decode(encode_bmp(RGB)), RGB)


def test_decode_gif_takes_first_frame():
    second = 255 - RGB[:4, :4]
    first = RGB[:4, :4]
    assert np.array_equal(_decode(encode_gif([first, second])), first)


def test_decode_rejects_garbage():
    with pytest.raises(tf.errors.InvalidArgumentError):
        pp.decode_image(tf.constant(b"definitely not an image"))


# --------------------------------------------------------------------------
# eval_transform
# --------------------------------------------------------------------------
def _coordinate_image(height: int, width: int) -> np.ndarray:
    """Channel 0 = row, channel 1 = column, channel 2 = 7 (uint8)."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.stack([rows, cols, np.full_like(rows, 7)], axis=-1).astype(np.uint8)


def test_eval_transform_is_central_87_5_percent():
    # 128 * 0.875 = 112 = output size, so the resize is the identity.
    out = pp.eval_transform(tf.constant(_coordinate_image(128, 128)), image_size=112)
    assert out.dtype == tf.float32 and out.shape == (112, 112, 3)
    out = out.numpy()
    assert np.array_equal(out[:, 0, 0], np.arange(8, 120))  # rows 8..119
    assert np.array_equal(out[0, :, 1], np.arange(8, 120))  # cols 8..119
    assert np.all(out[..., 2] == 7)


def test_eval_transform_non_square_keeps_central_region():
    image = _coordinate_image(64, 160)  # crop 56 x 140 at (4, 10)
    out = pp.eval_transform(tf.constant(image), image_size=32).numpy()
    assert out.shape == (32, 32, 3)
    # Bilinear resize keeps the coordinate ramp inside the crop bounds.
    assert 4 <= out[..., 0].min() and out[..., 0].max() <= 59
    assert 10 <= out[..., 1].min() and out[..., 1].max() <= 149


# --------------------------------------------------------------------------
# train_transform
# --------------------------------------------------------------------------
def test_train_crop_area_and_aspect_within_config():
    config = pp.AugmentConfig(area_range=(0.2, 0.6), aspect_ratio_range=(0.5, 2.0))
    shape = tf.constant([200, 300, 3])
    areas, aspects = [], []
    for i in range(300):
        _, size = pp.random_crop_box(shape, tf.constant([3, i]), config)
        h, w = int(size[0]), int(size[1])
        areas.append(h * w / (200 * 300))
        aspects.append(w / h)
    areas, aspects = np.array(areas), np.array(aspects)
    # Integer pixel rounding allows a small tolerance.
    assert areas.min() >= 0.2 - 0.01 and areas.max() <= 0.6 + 0.01
    assert aspects.min() >= 0.5 - 0.02 and aspects.max() <= 2.0 + 0.02
    assert areas.max() - areas.min() > 0.25 and aspects.max() / aspects.min() > 2  # really random


def test_train_transform_output_contract_and_determinism():
    image = tf.constant(RNG.integers(0, 256, (50, 70, 3), dtype=np.uint8))
    seed = tf.constant([1, 2])
    outputs = [pp.train_transform(image, seed, image_size=32).numpy() for _ in range(2)]
    assert outputs[0].dtype == np.float32 and outputs[0].shape == (32, 32, 3)
    assert outputs[0].min() >= 0 and outputs[0].max() <= 255
    assert outputs[0].max() > 1.5  # 0-255 scale, not 0-1
    assert np.array_equal(outputs[0], outputs[1])
    other = pp.train_transform(image, tf.constant([1, 3]), image_size=32).numpy()
    assert not np.array_equal(outputs[0], other)


def test_train_transform_without_distortion_is_crop_of_input():
    # With every random op switched off but the crop, pixels come from the crop.
    config = pp.AugmentConfig(
        area_range=(1.0, 1.0),
        aspect_ratio_range=(1.0, 1.0),
        resize_methods=("nearest",),
        flip=False,
        brightness_delta=0.0,
        contrast_range=(1.0, 1.0),
        saturation_range=(1.0, 1.0),
        hue_delta=0.0,
    )
    image = _coordinate_image(40, 40)
    out = pp.train_transform(
        tf.constant(image), tf.constant([0, 0]), image_size=40, config=config
    ).numpy()
    assert np.allclose(out, image, atol=0.01)


def test_augment_config_validates():
    with pytest.raises(ValueError, match="area_range"):
        pp.AugmentConfig(area_range=(0.5, 0.1))
    with pytest.raises(ValueError, match="hue_delta"):
        pp.AugmentConfig(hue_delta=0.7)


# --------------------------------------------------------------------------
# Size limits, read from the header before decoding
# --------------------------------------------------------------------------
def _claiming(data: bytes, offset: int, fmt: str, *values) -> bytes:
    """``data`` with the header fields at ``offset`` replaced: a file that claims another size."""
    return data[:offset] + struct.pack(fmt, *values) + data[offset + struct.calcsize(fmt) :]


def _problem(data: bytes, **limits) -> str:
    return pp.image_problem(tf.constant(data), **limits).numpy().decode()


def test_header_sizes_of_every_format_are_checked_against_the_limit():
    png = tf.io.encode_png(RGB).numpy()
    jpeg = encode_flat_jpeg(np.zeros((2, 3, 1), np.uint8))  # 16 x 24
    bmp = encode_bmp(RGB)
    cases = {  # format: (data, width, height)
        "png": (png, 11, 9),
        "jpeg": (jpeg, 24, 16),
        "bmp": (bmp, 11, 9),
        "gif": (encode_gif([RGB]), 11, 9),
        "huge png": (_claiming(png, 16, ">II", 40000, 30000), 40000, 30000),
        "huge jpeg": (
            _claiming(jpeg, jpeg.index(b"\xff\xc0") + 5, ">HH", 60000, 50000),
            50000,
            60000,
        ),
        "huge top-down bmp": (_claiming(bmp, 18, "<ii", 20000, -9000), 20000, 9000),
    }
    for name, (data, width, height) in cases.items():
        pixels = width * height
        assert _problem(data, max_image_pixels=pixels) == "", name
        assert _problem(data, max_image_pixels=pixels - 1) == (
            f"image is {width}x{height} pixels, over the limit of {pixels - 1} pixels"
        ), name
    for name in ("huge png", "huge jpeg", "huge top-down bmp"):  # over the default limit too
        assert "over the limit of 64000000 pixels" in _problem(cases[name][0]), name


def test_gif_counts_every_frame_on_a_canvas_as_large_as_the_largest_frame():
    frames = [RGB[:4, :5], 255 - RGB[:4, :5], RGB[4:8, :5]]
    gif = encode_gif(frames)
    assert _problem(gif, max_image_pixels=60) == ""
    assert _problem(gif, max_image_pixels=59) == (
        "image is 3 frames of 5x4 pixels, over the limit of 59 pixels"
    )
    # The logical screen claims 1x1, the frame is 5x4: TensorFlow decodes onto the larger canvas.
    tiny_screen = _claiming(encode_gif(frames[:1]), 6, "<HH", 1, 1)
    assert _problem(tiny_screen, max_image_pixels=19) == (
        "image is 5x4 pixels, over the limit of 19 pixels"
    )
    assert np.array_equal(_decode(tiny_screen), frames[0])


def test_decode_refuses_before_decoding_with_the_limit_named():
    bomb = png_bomb(9000)
    assert len(bomb) < 200_000
    message = "image is 9000x9000 pixels, over the limit of 64000000 pixels"
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        pp.decode_image(tf.constant(bomb))
    # In a graph (tf.data, a SavedModel) the assertion carries the same message.
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        tf.function(pp.decode_for_eval)(tf.constant(bomb), 8)
    png = tf.io.encode_png(RGB).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"image is {len(png)} bytes, over "):
        pp.decode_image(tf.constant(png), max_image_bytes=len(png) - 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="over the limit of 98 pixels"):
        pp.decode_image(tf.constant(png), max_image_pixels=98)
    assert np.array_equal(pp.decode_image(tf.constant(png), len(png), 99).numpy(), RGB)


def test_decode_refuses_formats_whose_size_is_not_checked():
    # tf.io.decode_image also reads WebP and JPEG XL; their headers are not parsed here.
    webp = b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00" + bytes(24)
    assert _problem(webp) == "cannot be decoded as an image: not JPEG, PNG, GIF or BMP data"
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="cannot be decoded as an image: not JPEG, PNG, GIF or BMP data",
    ):
        pp.decode_image(tf.constant(webp))
    with pytest.raises(ValueError, match="must be positive"):
        pp.image_problem(tf.constant(webp), max_image_pixels=0)

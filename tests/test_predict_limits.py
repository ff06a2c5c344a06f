"""predict on untrusted files: decompression bombs, lowered limits, FIFOs and devices. A stand-in
runner (mean brightness) keeps these free of any model."""

import os
import threading

import numpy as np
import pytest
import tensorflow as tf
from test_preprocessing import png_bomb  # test-only byte writer

from inception_keras.predict import predict


class MeanBrightness:
    input_shape, num_classes = (None, 16, 16, 3), 2

    def __call__(self, images):
        bright = images.mean(axis=(1, 2, 3)) / 255
        return np.stack([1 - bright, bright], axis=-1)


def write_png(path, side=24):
    pixels = np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8)
    path.write_bytes(tf.io.encode_png(pixels).numpy())
    return str(path)


def predict_or_unblock(fifo, *args, **kwargs):
    """``predict(*args, **kwargs)``, failing the test (instead of hanging it) if it has not
    returned within a minute because it opened ``fifo`` for reading."""
    result = {}
    worker = threading.Thread(target=lambda: result.update(out=predict(*args, **kwargs)))
    worker.start()
    worker.join(timeout=60)
    blocked = worker.is_alive()
    while worker.is_alive():  # each reader that opens it must be released
        try:  # a writer that closes at once gives the blocked reader end-of-file
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # no reader at the moment
            pass
        worker.join(timeout=1)
    if blocked:
        pytest.fail(f"predict blocked reading the FIFO {fifo}")
    return result["out"]


def test_predict_refuses_a_decompression_bomb_and_predicts_the_rest(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(9000))
    good = write_png(tmp_path / "good.png")
    result = predict(MeanBrightness(), [str(bomb), good], top_k=1)
    assert [p.path for p in result.predictions] == [good]
    assert result.errors == {
        str(bomb): "image is 9000x9000 pixels, over the limit of 64000000 pixels"
    }


def test_lowered_limits_refuse_a_normal_image(tmp_path):
    good = write_png(tmp_path / "good.png", side=24)
    size = os.path.getsize(good)
    assert predict(MeanBrightness(), [good], max_image_pixels=576).predictions  # 24 x 24 fits
    result = predict(MeanBrightness(), [good], max_image_pixels=575)
    assert not result.predictions
    assert result.errors == {good: "image is 24x24 pixels, over the limit of 575 pixels"}
    result = predict(MeanBrightness(), [good], max_image_bytes=size - 1)
    assert result.errors == {good: f"image is {size} bytes, over the limit of {size - 1} bytes"}


def test_fifos_and_devices_are_never_read(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    good = write_png(folder / "good.png")
    fifo = str(folder / "pipe.png")
    os.mkfifo(fifo)
    # A device (/dev/zero would never end; test_data checks it is not listed, without reading).
    os.symlink(os.devnull, folder / "null.png")
    result = predict_or_unblock(fifo, MeanBrightness(), [str(folder), fifo, os.devnull], top_k=1)
    assert [p.path for p in result.predictions] == [good]  # the folder's FIFO and link: skipped
    assert result.errors == {fifo: "not a regular file", os.devnull: "not a regular file"}

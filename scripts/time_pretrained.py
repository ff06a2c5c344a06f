"""Times the weight conversion and the cached load on this machine (the figures quoted under
"Pretrained weights" in the README).

    python scripts/time_pretrained.py

Writes a random-weight BVLC GoogLeNet .caffemodel of the published size (53.5 MB, the 2014
encoding) and a TF-slim checkpoint with the test suite's writers, then times: reading and
converting each, building the model alone, and GoogLeNet(weights="imagenet") from the conversion
cache (served from a local folder through INCEPTION_KERAS_WEIGHTS_MIRROR, so nothing leaves the
machine).
"""

import dataclasses
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import caffe_reference  # noqa: E402
import slim_reference  # noqa: E402

import inception_keras as ik  # noqa: E402
from inception_keras import pretrained  # noqa: E402
from inception_keras.files import file_digest  # noqa: E402
from inception_keras.pretrained import caffe, presets, slim  # noqa: E402


def timed(label, function):
    start = time.perf_counter()
    result = function()
    print(f"{label:<55} {time.perf_counter() - start:6.2f} s", flush=True)
    return result


def main():
    with tempfile.TemporaryDirectory() as tmp:
        model_file = os.path.join(tmp, "bvlc_googlenet.caffemodel")
        caffe_reference.write_caffemodel(model_file, caffe_reference.random_weights(), "v1")
        print(f"caffemodel: {os.path.getsize(model_file) / 1e6:.1f} MB")
        prefix = os.path.join(tmp, "inception_v1.ckpt")
        slim_reference.write_slim_checkpoint(prefix)

        timed(
            "build GoogLeNet(include_aux=True) (no weights)", lambda: ik.GoogLeNet(include_aux=True)
        )
        timed("convert the .caffemodel (read + map)", lambda: caffe.convert(model_file))
        timed("convert the TF-slim checkpoint", lambda: slim.convert(prefix))
        timed(
            "GoogLeNet(weights=<.caffemodel>, include_aux=True)",
            lambda: ik.GoogLeNet(weights=model_file, include_aux=True),
        )

        # weights="imagenet": the first call downloads from the local mirror and fills the cache.
        os.environ[pretrained.MIRROR_ENV] = "file://" + tmp
        os.environ["KERAS_HOME"] = os.path.join(tmp, "keras")
        presets.WEIGHTS_PRESETS["bvlc"] = dataclasses.replace(
            presets.WEIGHTS_PRESETS["bvlc"], sha1=file_digest(model_file, "sha1")
        )
        timed(
            'GoogLeNet(weights="imagenet") first call (copy, convert, cache)',
            lambda: ik.GoogLeNet(weights="imagenet", include_aux=True),
        )
        timed(
            'GoogLeNet(weights="imagenet") from the cache',
            lambda: ik.GoogLeNet(weights="imagenet", include_aux=True),
        )


if __name__ == "__main__":
    main()

"""One export process for tests/test_export_saved_model.py's concurrent-export test.

Run as ``python tests/_export_worker.py BASE_DIR SYNC_DIR SEED``: exports a tiny model seeded with
SEED into BASE_DIR/googlenet without a version or ``overwrite``, holding the publication until
every process of the test has staged its export (a file per process in SYNC_DIR, two in all), so
all of them publish at the same moment. Prints ``{"path": ..., "probabilities": ...}`` as its
last line: the version directory it got and its model's output for a fixed input.
"""

import json
import os
import sys
import time

import numpy as np

from inception_keras.export import saved_model as sm

EXPORTS = 2  # processes the test starts
PROBE = np.full((1, 8, 8, 3), 100.0, np.float32)


def tiny_model(seed):
    """A classifier of 8x8 images the exporter accepts (softmax ``predictions``, square input)."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax", name="predictions"),
        ]
    )


def main(base_dir, sync_dir, seed):
    model = tiny_model(seed)

    def when_all_staged(staged):
        open(os.path.join(sync_dir, str(seed)), "w").close()
        deadline = time.monotonic() + 300
        while len(os.listdir(sync_dir)) < EXPORTS:
            if time.monotonic() > deadline:
                sys.exit("the other exports never got staged")
            time.sleep(0.02)

    path = sm.export_saved_model(model, base_dir, before_publish=when_all_staged)
    print(json.dumps({"path": path, "probabilities": model(PROBE).numpy().tolist()}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))

"""The peer: torchvision's GoogLeNet measured on the same machine by ``peer_torchvision.py`` (beside
this module, shipped with the package) in its own Python: PyTorch is never a dependency of this
package, and that file imports nothing of it."""

import json
import os
import subprocess

from inception_keras.errors import UsageError

PEER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer_torchvision.py")


def load_peer(path):
    """A peer report (JSON with ``train`` and ``inference`` rows), checked enough to be used."""
    try:
        with open(path) as f:
            peer = json.load(f)
        rows = peer["train"] + peer["inference"]
        for row in rows:
            float(row["images_per_sec"]), str(row["mode"]), bool(row["bfloat16"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(
            f"`peer` {path!r} is not a report of peer_torchvision.py ({error!r})."
        ) from None
    return peer


def run_peer(config, log=print):
    """Runs the peer script with ``config.peer_python`` at this run's sizes; its report."""
    command = [
        config.peer_python,
        PEER_SCRIPT,
        f"--image-size={config.image_size}",
        f"--batch-size={config.batch_size}",
        f"--repeats={config.repeats}",
        f"--latency-repeats={config.latency_repeats}",
        f"--warmup={config.warmup}",
    ]
    log(f"  peer: {' '.join(command)}")
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    except OSError as error:
        raise UsageError(f"`peer_python` {config.peer_python!r}: {error.strerror}") from None
    if result.returncode != 0:
        raise UsageError(f"the peer script failed:\n{result.stderr[-2000:]}")
    for line in result.stderr.splitlines():
        if line.startswith("  peer "):
            log(line)
    return json.loads(result.stdout)

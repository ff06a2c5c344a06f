"""What the wheel carries besides the API: the licence, the notice for the class names, and the
benchmark's torchvision peer."""

import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_carries_the_licence_and_the_wordnet_notice(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("inception_keras-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        licence = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        assert "Apache License" in archive.read(licence).decode()
        assert "Version 2.0" in archive.read(licence).decode()
        notice = archive.read("inception_keras/NOTICE").decode()
        labels = archive.read("inception_keras/imagenet_labels.txt").decode()
        # The benchmark's torchvision peer, run as a file by another Python: shipped too.
        peer = archive.read("inception_keras/benchmark/peer_torchvision.py").decode()
    assert "import torchvision" in peer and "inception_keras" not in peer.split('"""')[2]
    # The WordNet licence asks for its copyright notice and disclaimer on every copy.
    assert "WordNet 3.0 Copyright 2006 by Princeton University.  All rights reserved." in notice
    assert 'THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS"' in notice
    assert labels.startswith("n01440764\ttench, Tinca tinca")

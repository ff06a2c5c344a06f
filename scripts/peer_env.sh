#!/usr/bin/env bash
# Creates .venv-peer/ at the repository root with PyTorch and torchvision from the package
# registry, for benchmark/peer_torchvision.py (the side-by-side peer of `inception-keras benchmark
# --peer-python .venv-peer/bin/python`). Never a dependency of inception-keras: a separate venv.
# TORCH and TORCHVISION choose the releases (default: torch 2.14.1, torchvision 0.29.1).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-peer"
TORCH="${TORCH:-2.14.1}"
TORCHVISION="${TORCHVISION:-0.29.1}"
if [ ! -x "$VENV/bin/python" ]; then
    PYTHON="${PYTHON:-}"
    for candidate in python3.11 python3.12 python3.10 python3; do
        [ -z "$PYTHON" ] && command -v "$candidate" >/dev/null 2>&1 && PYTHON="$candidate"
    done
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet "torch==$TORCH" "torchvision==$TORCHVISION" numpy
"$VENV/bin/python" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)'
echo "$VENV/bin/python"

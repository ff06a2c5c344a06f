#!/usr/bin/env bash
# The main job on the built-in default: set up .venv, print the paper's Table 1 from the live
# model, then train GoogLeNet (aux heads on, losses 1 + 0.3 + 0.3) from scratch on the built-in
# shapes set. Measured on a 2-core CPU: >= 90% validation top-1 in under 10 minutes (README).
# Then export every format and evaluate each in its own runtime (verify/predict join later).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
SECONDS=0

inception-keras summary --variant paper --input-size 224 --aux

# The built-in shapes set (generated into runs/tfds, no download) at 64 px: the "quickstart" preset
# in inception_keras/training.py says what it sets and why.
inception-keras train --preset quickstart

# Ship it: SavedModel (TF Serving layout), four TFLite variants and ONNX, one version, with a
# manifest; then score each artefact in its own runtime on the validation split.
inception-keras export --checkpoint runs/quickstart/best.keras --output saved_models --name googlenet --version 1 --overwrite
for artefact in saved_models/googlenet/1 saved_models/googlenet/1/googlenet_{float32,float16,dynamic_int8,int8}.tflite saved_models/googlenet/1/googlenet.onnx; do
    echo "== $artefact"
    inception-keras evaluate --model "$artefact" --dataset shapes/64px --data-dir runs/tfds
done

echo "Quickstart finished in $((SECONDS / 60)) min $((SECONDS % 60)) s; checkpoints in runs/quickstart/, exports in saved_models/googlenet/1/."

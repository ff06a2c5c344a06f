#!/usr/bin/env bash
# The main job on the built-in default: set up .venv, print the paper's Table 1 from the live
# model, then train GoogLeNet (aux heads on, losses 1 + 0.3 + 0.3) from scratch on the built-in
# shapes set (its measured accuracy and time are in the README).
# Then export every format, verify each in its own runtime, and predict a few new images.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
SECONDS=0

inception-keras summary --variant paper --image-size 224 --aux

# The built-in shapes set (generated into runs/tfds, no download) at 64 px: the "quickstart" preset
# in inception_keras/recipes.py says what it sets and why. --overwrite: a second quickstart
# replaces the first one's run instead of being refused.
inception-keras train --preset quickstart --overwrite

# Ship it: SavedModel (TF Serving layout), four TFLite variants and ONNX, one version, with a
# manifest. Then prove it: every artefact loaded in its own runtime, run on the validation split
# beside the checkpoint, within its tolerance (exit status 1 otherwise), and the manifest's hashes.
inception-keras export --model runs/quickstart/best.keras --output-dir saved_models --name googlenet --version 1 --overwrite
inception-keras verify saved_models/googlenet/1 --max-images 1000

# Use it: a few freshly generated images (files named by their true class), predicted by the
# full-integer TFLite model - any artefact works the same way.
inception-keras samples runs/samples --count 6 --image-size 64
inception-keras predict runs/samples --model saved_models/googlenet/1/googlenet_int8.tflite --top-k 3

echo
echo "Quickstart finished in $((SECONDS / 60)) min $((SECONDS % 60)) s."
echo "  checkpoints, history.csv, curves.png:   runs/quickstart/ (TensorBoard logs in logs/)"
echo "  exported model (TF Serving version 1):  saved_models/googlenet/1/ (SavedModel, *.tflite, googlenet.onnx, manifest.json)"
echo "  sample images:                          runs/samples/"

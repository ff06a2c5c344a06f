#!/usr/bin/env bash
# The main job on the built-in default: set up .venv, build the paper's GoogLeNet and print
# Table 1 computed from the live model. (Training, export and verification join as they land.)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
inception-keras summary --variant paper --input-size 224 --aux

#!/usr/bin/env bash
# Install the package with its test extra into .venv and run the whole test suite.
# Extra arguments go to pytest (e.g. ./scripts/test.sh -k summary).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh test
python -m pytest "$@"

#!/usr/bin/env bash
# Install the package with its test extra into .venv, check lint and formatting (ruff) and the
# import layers (import-linter, contract in pyproject.toml), and run the test suite on one
# pytest-xdist worker per core (at most 4: each holds its own TensorFlow; tests/conftest.py says
# which tests a worker takes together). Extra arguments go to pytest: ./scripts/test.sh -m "not slow"
# is the fast tier, ./scripts/test.sh -k summary one test, -n 0 runs everything in this one process.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh test
ruff check .
ruff format --check .
lint-imports --no-cache
python -m pytest -n auto --maxprocesses 4 --dist loadgroup --no-loadscope-reorder "$@"

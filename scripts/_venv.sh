# Sourced by quickstart.sh and test.sh: make sure .venv at the repository root exists and holds
# the package (editable) with the extras given as "$1" (e.g. "test"), installing only when
# setup.cfg/pyproject.toml changed since the last install, so a second run re-uses everything.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
EXTRAS="${1:-}"

if [ ! -x "$VENV/bin/python" ]; then
    PYTHON="${PYTHON:-}"
    if [ -z "$PYTHON" ]; then
        for candidate in python3.11 python3.12 python3.10 python3; do
            if command -v "$candidate" >/dev/null 2>&1; then PYTHON="$candidate"; break; fi
        done
    fi
    if [ -z "$PYTHON" ] || ! "$PYTHON" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 13))'; then
        echo "error: need Python 3.10-3.13 (TensorFlow 2.21); set PYTHON=/path/to/python3.11" >&2
        exit 1
    fi
    echo "Creating $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV"
fi

SPEC="."
[ -n "$EXTRAS" ] && SPEC=".[$EXTRAS]"
STAMP="$VENV/.installed-${EXTRAS:-base}"
WANT="$(cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    echo "Installing inception-keras$([ -n "$EXTRAS" ] && echo "[$EXTRAS]") into $VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    (cd "$ROOT" && "$VENV/bin/python" -m pip install --quiet -e "$SPEC")
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"

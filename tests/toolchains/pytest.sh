#!/usr/bin/env bash
# Create or update a venv with pytest (from PyPI, pinned) and print its python on the last line:
# the tests run the unit tests `lamb init` generates for Python with it.
#
#   tests/toolchains/pytest.sh [VENV_DIR]   (default: <repo>/target/pytest-venv)
#
# Idempotent and fast when up to date; concurrent callers are serialised with flock.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${1:-$HERE/../../target/pytest-venv}"
PINS="pytest==8.3.5"
PY="${PYTHON:-python3}"

mkdir -p "$(dirname "$VENV")"
VENV="$(cd "$(dirname "$VENV")" && pwd)/$(basename "$VENV")"
STAMP="$VENV/.lamb-pins"

up_to_date() { [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PINS" ]; }

if ! up_to_date; then
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$VENV.lock"
    flock 9
  fi
  if ! up_to_date; then
    {
      rm -rf "$VENV"
      "$PY" -m venv "$VENV"
      # shellcheck disable=SC2086
      "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q $PINS
      "$VENV/bin/python" -m pytest --version
      echo "$PINS" >"$STAMP"
    } 1>&2
  fi
fi
echo "$VENV/bin/python"

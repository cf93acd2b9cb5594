#!/usr/bin/env bash
# Create or update the emulator venv and print its python path on the last line.
#
#   tests/emulator/setup.sh [VENV_DIR]      (default: <repo>/target/emulator-venv)
#
# Idempotent and fast when up to date: the sha256 of requirements.txt (plus the
# interpreter version) is stored in the venv; nothing is installed when it
# matches.  Concurrent callers are serialised with flock when available.
# Env: PYTHON=python3.x to choose the interpreter used to create the venv.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${1:-$HERE/../../target/emulator-venv}"
REQ="$HERE/requirements.txt"
PY="${PYTHON:-python3}"

mkdir -p "$(dirname "$VENV")"
VENV="$(cd "$(dirname "$VENV")" && pwd)/$(basename "$VENV")"
STAMP="$VENV/.lamb-emulator-requirements.sha256"

want_hash() {
  { cat "$REQ"; "$1" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1
}

up_to_date() {
  [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(want_hash "$VENV/bin/python")" ]
}

if up_to_date; then
  echo "$VENV/bin/python"
  exit 0
fi

if command -v flock >/dev/null 2>&1; then
  exec 9>"$VENV.lock"
  flock 9
  if up_to_date; then  # another caller finished the install while we waited
    echo "$VENV/bin/python"
    exit 0
  fi
fi

{
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
  fi
  rm -f "$STAMP"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$REQ"
  "$VENV/bin/python" -c 'import moto, samtranslator, boto3, werkzeug, flask'
  want_hash "$VENV/bin/python" >"$STAMP"
} 1>&2

echo "$VENV/bin/python"

#!/usr/bin/env bash
# Creates or updates a venv with pinned packages from PyPI, for the toolchain scripts beside it.
#
#   tests/toolchains/pinned-venv.sh VENV_DIR "PKG==VER ..." CHECK_COMMAND...
#
# CHECK_COMMAND (relative to the venv's bin/, e.g. `python -m pytest --version`) must succeed
# once the packages are installed; its first word must exist for the venv to count as up to
# date. Idempotent and fast when up to date; concurrent callers are serialised with flock.
# Prints nothing on stdout: the caller prints what it hands out.
set -euo pipefail

VENV="$1"
PINS="$2"
shift 2
CHECK=("$@")
PY="${PYTHON:-python3}"

mkdir -p "$(dirname "$VENV")"
VENV="$(cd "$(dirname "$VENV")" && pwd)/$(basename "$VENV")"
STAMP="$VENV/.lamb-pins"

up_to_date() { [ -x "$VENV/bin/${CHECK[0]}" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PINS" ]; }

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
      "$VENV/bin/${CHECK[0]}" "${CHECK[@]:1}"
      echo "$PINS" >"$STAMP"
    } 1>&2
  fi
fi

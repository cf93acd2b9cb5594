#!/usr/bin/env bash
# Create or update a venv with cargo-lambda and zig (both from PyPI, pinned) and print its bin
# directory on the last line: put it first on PATH for BuildMethod rust-cargolambda.
#
#   tests/toolchains/cargo-lambda.sh [VENV_DIR]   (default: <repo>/target/cargo-lambda-venv)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${1:-$HERE/../../target/cargo-lambda-venv}"
"$HERE/pinned-venv.sh" "$VENV" "cargo-lambda==1.9.2 ziglang==0.17.0" cargo-lambda lambda --version
echo "$(cd "$VENV" && pwd)/bin"

#!/usr/bin/env bash
# Create or update a venv with pytest (from PyPI, pinned) and print its python on the last line:
# the tests run the unit tests `lamb init` generates for Python with it.
#
#   tests/toolchains/pytest.sh [VENV_DIR]   (default: <repo>/target/pytest-venv)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${1:-$HERE/../../target/pytest-venv}"
"$HERE/pinned-venv.sh" "$VENV" "pytest==8.3.5" python -m pytest --version
echo "$(cd "$VENV" && pwd)/bin/python"

#!/usr/bin/env bash
# Resolve requirements.in into requirements.lock (exact pins of everything) in a scratch venv.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3.11 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q pip==24.3.1
"$tmp/venv/bin/python" -m pip install -q -r requirements.in
{
  echo "# Exact pins for Python 3.11 on $(uname -m), resolved from requirements.in (regenerate: make lock)."
  echo "# mmcv is built by tools/build_mmcv.sh; the project itself is installed editable."
  "$tmp/venv/bin/python" -m pip freeze --all --exclude-editable | grep -v -i -E "^(pip|faceparse)==" | sort -f
} > requirements.lock
echo "lock: wrote requirements.lock ($(grep -vc '^#' requirements.lock) packages)"

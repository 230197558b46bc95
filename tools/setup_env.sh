#!/usr/bin/env bash
# Create .venv from requirements.lock, add the cached mmcv wheel and the project.
# Idempotent: a second run checks stamps and returns in seconds; from a fresh
# clone on the same machine it reinstalls from pip's and our wheel caches
# (about a minute) and never rebuilds mmcv.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
LOCK=requirements.lock
STAMP="$VENV/.faceparse-setup"

fail() { echo "setup: $*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || fail "'$PYTHON' not found. Install Python 3.11 (e.g. pyenv install 3.11, or apt-get install python3.11 python3.11-venv) or run 'make setup PYTHON=/path/to/python3.11'."
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
  || fail "$PYTHON is $("$PYTHON" --version 2>&1); faceparse pins packages for Python 3.11."

want="$(sha256sum "$LOCK" tools/build_mmcv.sh pyproject.toml | sha256sum | cut -c1-16)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c 'import mmcv.ops, mmseg, faceparse' 2>/dev/null; then
  echo "setup: $VENV is up to date"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV" || fail "could not create a venv; on Debian install python3.11-venv."
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q pip==24.3.1

echo "setup: installing the pinned packages of $LOCK"
"${PIP[@]}" install -q -r "$LOCK" \
  || fail "pip could not install $LOCK (see above). Offline? pip needs PyPI or a local index/cache holding these exact versions."

mmcv_wheel=$(tools/build_mmcv.sh "$VENV/bin/python") || fail "building mmcv failed (see above)."
"${PIP[@]}" install -q --no-deps --force-reinstall "$mmcv_wheel"

"${PIP[@]}" install -q --no-deps --no-build-isolation -e .

"$VENV/bin/python" -c 'import mmcv.ops, mmseg.models, faceparse.labels, snakemake' \
  || fail "the environment was installed but does not import; see the traceback above."
echo "$want" > "$STAMP"
echo "setup: ready ($VENV: torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)'), mmcv $("$VENV/bin/python" -c 'import mmcv; print(mmcv.__version__)'))"

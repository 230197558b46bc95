#!/usr/bin/env bash
# Create .venv from requirements.lock (+ requirements.nodeps.txt without their dependencies),
# add the cached mmcv wheel and the project.
# Idempotent: a second run checks a stamp and returns in seconds; a fresh clone
# on the same machine links the cached base venv (seconds) and never rebuilds mmcv.
# Re-running after requirements.lock changed recreates .venv (extra packages you
# installed into it by hand are dropped).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
LOCK=requirements.lock
NODEPS=requirements.nodeps.txt
STAMP="$VENV/.faceparse-setup"

fail() { echo "setup: $*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || fail "'$PYTHON' not found. Install Python 3.11 (e.g. pyenv install 3.11, or apt-get install python3.11 python3.11-venv) or run 'make setup PYTHON=/path/to/python3.11'."
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
  || fail "$PYTHON is $("$PYTHON" --version 2>&1); faceparse pins packages for Python 3.11."

want="$(sha256sum "$LOCK" "$NODEPS" tools/build_mmcv.sh pyproject.toml | sha256sum | cut -c1-16)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c 'import mmcv.ops, mmseg, faceparse' 2>/dev/null; then
  echo "setup: $VENV is up to date"
  exit 0
fi

# The locked packages + mmcv live once per machine in a base venv in the cache;
# .venv gets hard links to its files (seconds, no extra disk), then the project.
CACHE_ROOT=${FACEPARSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faceparse}
BASE="$CACHE_ROOT/venvs/$(sha256sum "$LOCK" "$NODEPS" tools/build_mmcv.sh | sha256sum | cut -c1-16)-py311-$(uname -m)"
SITE=lib/python3.11/site-packages

build_base() {
  echo "setup: installing the pinned packages of $LOCK into $BASE (once per machine)"
  rm -rf "$BASE"
  mkdir -p "$(dirname "$BASE")"
  "$PYTHON" -m venv "$BASE" || fail "could not create a venv; on Debian install python3.11-venv."
  local pip=("$BASE/bin/python" -m pip --disable-pip-version-check)
  "${pip[@]}" install -q pip==24.3.1
  "${pip[@]}" install -q -r "$LOCK" \
    || fail "pip could not install $LOCK (see above). Offline? pip needs PyPI or a local index/cache holding these exact versions."
  "${pip[@]}" install -q --no-deps -r "$NODEPS" \
    || fail "pip could not install $NODEPS (see above)."
  local mmcv_wheel
  mmcv_wheel=$(tools/build_mmcv.sh "$BASE/bin/python") || fail "building mmcv failed (see above)."
  "${pip[@]}" install -q --no-deps "$mmcv_wheel"
  "$BASE/bin/python" -c 'import mmcv.ops, mmseg.models' || fail "the base environment $BASE does not import mmcv/mmseg (see above)."
  touch "$BASE/.complete"
}

link_base_into_venv() {
  local venv_abs
  rm -rf "$VENV"
  "$PYTHON" -m venv --without-pip "$VENV" || fail "could not create $VENV; on Debian install python3.11-venv."
  venv_abs=$(cd "$VENV" && pwd)
  # Hard links where the cache and the checkout share a file system, else a copy.
  cp -al "$BASE/$SITE/." "$VENV/$SITE/" 2>/dev/null || cp -a "$BASE/$SITE/." "$VENV/$SITE/"
  for script in "$BASE"/bin/*; do
    name=$(basename "$script")
    [ -e "$VENV/bin/$name" ] && continue  # python, activate: the new venv's own
    sed "s|$BASE/bin/python|$venv_abs/bin/python|g" "$script" > "$VENV/bin/$name"
    chmod +x "$VENV/bin/$name"
  done
}

[ -f "$BASE/.complete" ] || build_base
# Base venvs of earlier lock files are only taking space: venvs made from them hold their own
# hard links (or copies) of every file, so removing them breaks nothing.
for old in "$(dirname "$BASE")"/*; do
  [ "$old" = "$BASE" ] || { echo "setup: removing the outdated base venv $old"; rm -rf "$old"; }
done
echo "setup: linking $VENV to $BASE"
link_base_into_venv
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . \
  || fail "installing the project into $VENV failed (see above)."

"$VENV/bin/python" -c 'import mmcv.ops, mmseg.models, faceparse.labels, snakemake' \
  || fail "the environment was installed but does not import; see the traceback above."
# (mediapipe's native module prints a harmless protobuf warning on import: its stderr is shown on failure only)
"$VENV/bin/python" -c 'import faceparse.predict.faces as f; f.FaceDetector()' 2>"$VENV/.detector-check" \
  || { cat "$VENV/.detector-check" >&2; fail "the face detector of faceparse-parse --faces does not load (see above)."; }
echo "$want" > "$STAMP"
echo "setup: ready ($VENV: torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)'), mmcv $("$VENV/bin/python" -c 'import mmcv; print(mmcv.__version__)'))"

#!/usr/bin/env bash
# Build (once) and cache the mmcv 2.1.0 wheel with compiled CPU ops for this venv.
#
# mmcv has no wheel on PyPI and its setup.py forces -std=c++14/17, while
# torch 2.14's headers need C++20: we fetch the pinned sdist, raise the
# standard to c++20 and build against the venv's torch. The wheel is cached
# outside the checkout, keyed by mmcv, torch and Python versions, so a second
# setup (even from a fresh clone) only installs it.
#
# No debug info (-g0 after Python's own "-g -O3"): the same -O3 code, compiled in half the
# time (nms.cpp: 8.7 s instead of 15-18 s on this machine's cores) into a wheel a fraction of
# the size; the ~80 files all parse torch's headers, and writing their debug info was half the
# cold setup's build.
#
# CPU ops are built even on a GPU machine (CUDA_VISIBLE_DEVICES is hidden
# during the build): faceparse's models use no mmcv CUDA op. Set
# FACEPARSE_MMCV_CUDA=1 to build the CUDA ops instead (needs nvcc matching
# torch's CUDA).
#
# Usage: tools/build_mmcv.sh <venv-python>   (prints the wheel path on stdout; messages go to stderr)
set -euo pipefail

PY=$(realpath -s "${1:?usage: build_mmcv.sh <venv-python>}")
MMCV_VERSION=2.1.0
SDIST_URL="https://files.pythonhosted.org/packages/a7/19/f97f0fd4d432113a232e75f965335be6b7bb6557ae9faf8051e9a012cadd/mmcv-${MMCV_VERSION}.tar.gz"
SDIST_SHA256=d387bcab66b467479b6660310e23746cfc79c6e57acf04094680adb499a5cd3f

CACHE_ROOT=${FACEPARSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faceparse}
TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])') || {
  echo "build_mmcv: torch is not importable from $PY; install the lock file first" >&2; exit 1; }
PY_TAG=$("$PY" -c 'import sys; print(f"cp{sys.version_info.major}{sys.version_info.minor}")')
VARIANT=cpu; [ "${FACEPARSE_MMCV_CUDA:-0}" = 1 ] && VARIANT=cuda
KEY="mmcv-${MMCV_VERSION}_torch-${TORCH_VERSION}_${PY_TAG}_${VARIANT}_$(uname -m)"
WHEEL_DIR="$CACHE_ROOT/wheels/$KEY"
LOG="$CACHE_ROOT/logs/$KEY.log"
mkdir -p "$WHEEL_DIR" "$(dirname "$LOG")"

if ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
  echo "build_mmcv: using the cached wheel in $WHEEL_DIR" >&2
  ls "$WHEEL_DIR"/mmcv-*.whl
  exit 0
fi

for tool in gcc g++ curl; do
  command -v "$tool" >/dev/null || {
    echo "build_mmcv: '$tool' not found. Install a C++ compiler and curl (Debian: apt-get install build-essential curl)." >&2
    exit 1; }
done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "build_mmcv: building mmcv $MMCV_VERSION for torch $TORCH_VERSION ($PY_TAG, $VARIANT); log: $LOG" >&2
echo "build_mmcv: this takes about 6 minutes on 2 cores and happens once per machine" >&2
{
  curl -fsSL -o "$WORK/mmcv.tar.gz" "$SDIST_URL"
  echo "$SDIST_SHA256  $WORK/mmcv.tar.gz" | sha256sum -c -
  tar xzf "$WORK/mmcv.tar.gz" -C "$WORK"
  # c++20 for torch 2.14's headers; pkg_resources is gone from the setuptools torch needs (>= 81).
  sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' \
    -e 's/^from pkg_resources import DistributionNotFound, get_distribution, parse_version$/from importlib.metadata import PackageNotFoundError as DistributionNotFound, distribution as get_distribution\nfrom packaging.version import parse as parse_version/' \
    "$WORK/mmcv-$MMCV_VERSION/setup.py"
  grep -q 'importlib.metadata import PackageNotFoundError' "$WORK/mmcv-$MMCV_VERSION/setup.py"
  "$PY" -m pip install -q ninja==1.11.1.4
} >"$LOG" 2>&1 || { echo "build_mmcv: fetching/preparing the sdist failed, see $LOG" >&2; tail -20 "$LOG" >&2; exit 1; }

BUILD_ENV=(MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" CFLAGS="${CFLAGS:-} -g0")
if [ "$VARIANT" = cpu ]; then BUILD_ENV+=(CUDA_VISIBLE_DEVICES= FORCE_CUDA=0); else BUILD_ENV+=(FORCE_CUDA=1); fi
if ! (cd "$WORK/mmcv-$MMCV_VERSION" && env "${BUILD_ENV[@]}" PATH="$(dirname "$PY"):$PATH" \
      "$PY" -m pip wheel --no-build-isolation --no-deps -w "$WORK/dist" . ) >>"$LOG" 2>&1; then
  echo "build_mmcv: compiling mmcv failed. Last lines of $LOG:" >&2
  tail -30 "$LOG" >&2
  echo "build_mmcv: check that g++ supports -std=c++20 (g++ >= 10) and that torch imports." >&2
  exit 1
fi
mv "$WORK"/dist/mmcv-*.whl "$WHEEL_DIR/"
echo "build_mmcv: built and cached in $WHEEL_DIR" >&2
ls "$WHEEL_DIR"/mmcv-*.whl

#!/usr/bin/env bash
# Prepare the folder that tools/gpu_check.sh installs from on a bare, offline GPU machine.
#
# The machine to plan for has Python 3.12, torch (CUDA), timm, numpy 2,
# opencv(-headless), matplotlib, scipy, rich, regex, pyyaml, packaging, pillow,
# ninja, setuptools, a C++ compiler; no mmcv, mmengine, mmsegmentation; no
# network. This downloads (here, where PyPI is reachable):
#   - the pure-Python wheels of mmengine, mmsegmentation and the small
#     packages they import that such a machine lacks, at requirements.lock's
#     versions (what the tests here ran), for cp312 (pip download --no-deps);
#   - mmcv's sdist (no wheel exists), sha256-checked, patched as
#     tools/build_mmcv.sh patches it (C++20, no pkg_resources) and packed
#     again as mmcv-<version>-patched.tar.gz, so the GPU machine only compiles;
# checks that every requirement of those packages is in the folder or on the
# machine (GPU_PRESENT below), writes SHA256SUMS, and fails when the folder is
# over 64 MiB (what can travel beside the repository).
#
# Usage: tools/prepare_gpu_wheels.sh DIR     (PYTHON=... picks the Python whose pip is used)
set -euo pipefail

DIR=${1:?usage: tools/prepare_gpu_wheels.sh DIR}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$REPO/.venv/bin/python}
[ -x "$PY" ] || PY=python3
LIMIT_MIB=${FACEPARSE_WHEELS_LIMIT_MIB:-64}
# Wheels to carry: mmengine, mmseg, and what they import that the GPU image lacks.
PACKAGES=(mmengine mmsegmentation addict yapf platformdirs termcolor prettytable wcwidth ftfy)
# Distributions the GPU image already has (its package list), lower case.
GPU_PRESENT="torch torchvision timm numpy opencv-python-headless matplotlib scipy rich regex pyyaml packaging
pillow ninja setuptools wheel pip six python-dateutil pyparsing cycler kiwisolver fonttools contourpy
markdown-it-py mdurl pygments typing-extensions filelock jinja2 sympy networkx fsspec huggingface-hub
safetensors tqdm requests"

eval "$(grep -E '^(MMCV_VERSION|SDIST_URL|SDIST_SHA256)=' "$REPO/tools/build_mmcv.sh")"
: "${MMCV_VERSION:?} ${SDIST_URL:?} ${SDIST_SHA256:?}"

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
rm -f "$DIR"/*.whl "$DIR"/mmcv-*.tar.gz "$DIR/SHA256SUMS"

pins=()
for name in "${PACKAGES[@]}"; do
  pin=$(grep -iE "^${name}==" "$REPO/requirements.lock" || true)
  [ -n "$pin" ] || { echo "prepare_gpu_wheels: $name is not pinned in requirements.lock" >&2; exit 1; }
  pins+=("$pin")
done
echo "prepare_gpu_wheels: downloading ${pins[*]} for cp312" >&2
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$DIR" "${pins[@]}" 2> >(grep -v "^WARNING: Location" >&2)

# The mmcv sdist: the one build_mmcv.sh cached, else from PyPI.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
CACHE_ROOT=${FACEPARSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faceparse}
cached=$(find "$CACHE_ROOT" -name "mmcv-${MMCV_VERSION}.tar.gz" -print -quit 2>/dev/null || true)
if [ -n "$cached" ]; then cp "$cached" "$WORK/mmcv.tar.gz"; else curl -fsSL -o "$WORK/mmcv.tar.gz" "$SDIST_URL"; fi
echo "$SDIST_SHA256  $WORK/mmcv.tar.gz" | sha256sum -c --quiet - \
  || { echo "prepare_gpu_wheels: mmcv sdist checksum mismatch (${cached:-$SDIST_URL})" >&2; exit 1; }
tar xzf "$WORK/mmcv.tar.gz" -C "$WORK"
SRC="$WORK/mmcv-$MMCV_VERSION"
# The patch of tools/build_mmcv.sh (tests/test_gpu_check.py checks they are the same).
sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' \
    -e 's/^from pkg_resources import DistributionNotFound, get_distribution, parse_version$/from importlib.metadata import PackageNotFoundError as DistributionNotFound, distribution as get_distribution\nfrom packaging.version import parse as parse_version/' \
    "$SRC/setup.py"
grep -q 'importlib.metadata import PackageNotFoundError' "$SRC/setup.py" \
  || { echo "prepare_gpu_wheels: patching $SRC/setup.py failed (pkg_resources import not found)" >&2; exit 1; }
! grep -qE -- '-std=c\+\+1[47]' "$SRC/setup.py" \
  || { echo "prepare_gpu_wheels: $SRC/setup.py still sets C++14/17" >&2; exit 1; }
tar czf "$DIR/mmcv-${MMCV_VERSION}-patched.tar.gz" -C "$WORK" "mmcv-$MMCV_VERSION"

# Every requirement of the carried packages must be carried or on the GPU image.
"$PY" - "$DIR" "$GPU_PRESENT" "$SRC" <<'EOF'
import sys, zipfile
from pathlib import Path
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

folder, present, mmcv_src = Path(sys.argv[1]), set(sys.argv[2].split()), Path(sys.argv[3])
env = default_environment() | {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
                               "platform_system": "Linux", "platform_machine": "x86_64", "extra": ""}
carried = {canonicalize_name(w.name.split("-")[0]): w for w in folder.glob("*.whl")}
requires = {}
for name, wheel in carried.items():
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        requires[name] = [l.split(":", 1)[1].strip() for l in z.read(meta).decode().splitlines()
                          if l.startswith("Requires-Dist:")]
requires["mmcv"] = [l.strip() for l in (mmcv_src / "requirements" / "runtime.txt").read_text().splitlines()
                    if l.strip() and not l.startswith("#")]
have = set(carried) | {canonicalize_name(p) for p in present} | {"mmcv"}
aliases = {"opencv-python": "opencv-python-headless"}
missing = []
for name, reqs in requires.items():
    for text in reqs:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        dist = canonicalize_name(aliases.get(req.name, req.name))
        if dist not in have:
            missing.append(f"{name} needs {text}")
if missing:
    sys.exit("prepare_gpu_wheels: neither carried nor on the GPU image:\n  " + "\n  ".join(missing))
EOF

(cd "$DIR" && sha256sum -- *.whl mmcv-*-patched.tar.gz > SHA256SUMS)
bytes=$(du -sb "$DIR" | cut -f1)
limit=$((LIMIT_MIB * 1024 * 1024))
echo "prepare_gpu_wheels: $(ls "$DIR" | wc -l) files, $((bytes / 1024)) KiB in $DIR (limit ${LIMIT_MIB} MiB)" >&2
if [ "$bytes" -gt "$limit" ]; then
  echo "prepare_gpu_wheels: $DIR holds $bytes bytes, over the ${LIMIT_MIB} MiB that can travel" >&2
  exit 1
fi

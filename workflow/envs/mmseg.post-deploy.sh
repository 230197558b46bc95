#!/usr/bin/env bash
# Run by Snakemake (--sdm conda) inside the new mmseg env: add mmcv 2.1.0 from the
# machine's wheel cache, building it once if needed (see tools/build_mmcv.sh).
set -euo pipefail
wheel=$(tools/build_mmcv.sh "$CONDA_PREFIX/bin/python")
"$CONDA_PREFIX/bin/python" -m pip install --no-deps "$wheel"

"""The tiny configuration of the whole DAG (.test/config.yaml) and a way to run Snakemake on it
in a work dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"

# The tiny configuration of the whole DAG (the snakemake-workflows `.test/` idea).
TINY_CONFIG = yaml.safe_load((ROOT / ".test" / "config.yaml").read_text())


def run_snakemake(
    workdir: Path, *args: str, timeout: int = 900, python_flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """Snakemake on the workflow in ``workdir`` with its config.yaml; ``python_flags``: run it
    under this interpreter with them (``-X importtime``)."""
    cmd = [
        *([sys.executable, *python_flags] if python_flags else []),
        str(SNAKEMAKE),
        "-s",
        str(ROOT / "workflow" / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        "--resources",
        "gpu=0",
        "--cores",
        "2",
        *args,
    ]
    # (--resources takes every word after it: a target right after it would be read as one)
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "PYTHONHASHSEED": "0"}
    )

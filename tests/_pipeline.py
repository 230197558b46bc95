"""A tiny configuration of the whole DAG and a way to run Snakemake on it in a work dir."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"

TINY_CONFIG = {
    "data_layout": "synthetic",
    "synthetic": {"seed": 3, "size": 128, "counts": {"train": 16, "val": 6, "test": 5}},
    "tta": {"scales": [0.75, 1.0], "flip": True},
    "models": {
        "demo_tiny": {
            "config": "configs/demo_tiny.py",
            "gpus": 0,
            "overrides": {
                "train_cfg.max_iters": 12,
                "train_cfg.val_interval": 6,
                "default_hooks.checkpoint.interval": 6,
                "train_dataloader.batch_size": 2,
            },
        }
    },
}


def run_snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [str(SNAKEMAKE), "-s", str(ROOT / "workflow" / "Snakefile"), "-d", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", "--resources", "gpu=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONHASHSEED": "0"})

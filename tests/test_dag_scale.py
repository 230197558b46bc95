"""Planning a full-size run is quick: one job per step (per model), never per image.

A CelebAMask-HQ-sized configuration (30000 images, 3 models) must dry-run
(`snakemake -n`) in seconds, and its job count must not depend on how many
images there are: rules handle whole splits, so the DAG never lists images
while it is planned (on a cluster, each image as a job would mean 30000 sbatch
calls).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
PLAN_LIMIT_S = 20

MODELS = {
    "demo_tiny": {"config": "configs/demo_tiny.py", "gpus": 0},
    "seed_convnext_xl": {"config": "configs/seed_convnext_xl.py", "gpus": 1},
    "convnext_xl_4gpu": {
        "config": "configs/seed_convnext_xl.py",
        "gpus": 4,
        "select_iter": 72000,
        "overrides": {"train_cfg.max_iters": 80000},
    },
}


def full_config(layout: str, root: Path) -> dict:
    return {
        "data_layout": layout,
        "data_root": str(root),
        "celebamask_hq": {"max_images": None},
        "flip": True,
        "train_on_val": True,
        "tta": {"scales": [0.5, 0.75, 1.0, 1.25, 1.5], "flip": True},
        "models": MODELS,
    }


def mini_root(base: Path, n_train: int, val_masks: bool = True) -> Path:
    """A `mini` layout with n_train (empty) training images, like 30000 real ones to a planner
    (val's masks withheld unless ``val_masks``)."""
    root = base / f"mini{n_train}"
    counts = {"train": n_train, "val": max(1, n_train // 10), "test": max(1, n_train // 10)}
    for split, n in counts.items():
        labelled = split == "train" or (split == "val" and val_masks)
        for kind in ("images", "masks") if labelled else ("images",):
            d = root / split / kind
            d.mkdir(parents=True)
            suffix = ".jpg" if kind == "images" else ".png"
            for i in range(n):
                (d / f"{i}{suffix}").touch()
    return root


def dry_run(workdir: Path, config: dict, *args: str) -> tuple[dict[str, int], float]:
    """Job counts per rule of `snakemake -n` and its wall time."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [
        "timeout",
        "-k",
        "10",
        "120",
        str(SNAKEMAKE),
        "-n",
        "-s",
        str(ROOT / "workflow/Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        *args,
    ]
    start = time.monotonic()
    result = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=180, env={**os.environ, "PYTHONHASHSEED": "0"}
    )
    elapsed = time.monotonic() - start
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-4000:]
    table = re.search(r"Job stats:\njob\s+count\n[-\s]+\n(.*?)\ntotal\s+(\d+)", text, re.S)
    assert table, text[-3000:]
    counts = {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table.group(1), re.M)}
    assert sum(counts.values()) == int(table.group(2))
    return counts, elapsed


def assert_no_per_image_jobs(counts: dict[str, int]) -> None:
    # At most one job per model for a rule (train, evaluate, ...), one for a data step.
    assert max(counts.values()) <= len(MODELS), counts
    assert counts["train"] == len(MODELS), counts


@pytest.fixture(scope="module")
def mini_roots(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("roots")
    return mini_root(base, 30000), mini_root(base, 3)


@pytest.mark.parametrize(
    "profile", [[], ["--workflow-profile", str(ROOT / "profiles/slurm")]], ids=["local", "slurm-profile"]
)
def test_full_size_mini_plans_fast_and_independent_of_image_count(
    tmp_path: Path, profile: list[str], mini_roots: tuple[Path, Path]
):
    big, small = mini_roots
    counts_big, t_big = dry_run(tmp_path / "big", full_config("mini", big), "--cores", "16", *profile)
    counts_small, t_small = dry_run(tmp_path / "small", full_config("mini", small), "--cores", "16", *profile)
    assert counts_big == counts_small
    assert_no_per_image_jobs(counts_big)
    assert t_big < PLAN_LIMIT_S, f"planning 30000 images took {t_big:.1f} s (3 images: {t_small:.1f} s)"
    print(f"plan: 30000 images {t_big:.1f} s, 3 images {t_small:.1f} s, jobs {sum(counts_big.values())}")


def test_full_celebamask_hq_plans_fast(tmp_path: Path):
    """The raw release is read by one conversion job; planning never looks inside it."""
    release = tmp_path / "CelebAMask-HQ"  # empty: the DAG must not need its 30000 files to plan
    release.mkdir()
    counts, elapsed = dry_run(tmp_path / "run", full_config("celebamask-hq", release), "--cores", "16")
    assert counts.get("source") == 1, counts
    assert_no_per_image_jobs(counts)
    assert elapsed < PLAN_LIMIT_S, f"planning took {elapsed:.1f} s"
    print(f"plan: celebamask-hq {elapsed:.1f} s, jobs {sum(counts.values())}")

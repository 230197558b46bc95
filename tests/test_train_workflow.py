"""Through Snakemake: what does not change the weights (TTA, select_iter) does not retrain."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from _pipeline import run_snakemake

from faceparse.records import Selection


def _planned(text: str) -> dict[str, int]:
    table = re.search(r"Job stats:\njob\s+count\n[-\s]+\n(.*?)\ntotal\s+\d+", text, re.S)
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table.group(1), re.M)} if table else {}


@pytest.mark.slow
def test_tta_and_select_iter_do_not_retrain(tiny_run: Path, tmp_path: Path):
    work = tmp_path / "project"  # a moved copy of the finished tiny run
    shutil.copytree(tiny_run, work, symlinks=True)
    train_dir = work / "results" / "models" / "demo_tiny" / "train"
    checkpoints = {p.name: p.stat().st_mtime_ns for p in train_dir.glob("*.pth")}
    config = yaml.safe_load((work / "config.yaml").read_text())

    config["tta"] = {"scales": [1.0], "flip": False}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    dry = run_snakemake(work, "-n")
    planned = _planned(dry.stdout + dry.stderr)
    assert dry.returncode == 0 and planned.get("evaluate") == 1, dry.stdout[-3000:]
    assert "train" not in planned and "select" not in planned

    config["models"]["demo_tiny"]["select_iter"] = 6
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    run = run_snakemake(work, "--until", "select")
    assert run.returncode == 0, run.stderr[-4000:]
    log = (work / "logs" / "models" / "demo_tiny" / "train.log").read_text()
    assert "nothing to do" in log and "not resuming" not in log
    assert {p.name: p.stat().st_mtime_ns for p in train_dir.glob("*.pth")} == checkpoints
    best = Selection.read(work / "results" / "models" / "demo_tiny" / "best.json")
    assert best.iter == 6 and Path(best.checkpoint).parent == train_dir.resolve()

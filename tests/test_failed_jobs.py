"""A failed job is rerun by the next `snakemake`, never hidden behind the previous inputs' results.

Snakemake deletes a failed job's outputs and does not remake a missing intermediate output whose
consumers look up to date. So every job must make something that `all` asks for, and select (the
consumer of train.json that everything after training depends on) must see what train sees.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from _pipeline import ROOT, SNAKEMAKE, TINY_CONFIG, run_snakemake
from faceparse.records import Selection
from test_dag_scale import mini_root

EDGE = re.compile(r"^\s*(\d+) -> (\d+)$", re.M)
NODE = re.compile(r'^\s*(\d+)\[label = "([^"\\]+)', re.M)


def _configs(tmp_path: Path) -> dict[str, dict]:
    models = {
        "compact": {"config": "configs/compact.py", "gpus": 0},
        "demo_tiny": {"config": "configs/demo_tiny.py", "gpus": 0},
    }
    ensembles = {"both": {"models": ["compact", "demo_tiny"]}}
    mini = {"data_layout": "mini", "models": models, "ensembles": ensembles}
    return {
        "tiny": TINY_CONFIG,
        "val_without_masks": {**mini, "data_root": str(mini_root(tmp_path / "held_out", 4, val_masks=False))},
        "dev_split": {
            **mini,
            "data_root": str(mini_root(tmp_path / "labelled", 4)),
            "dev_split": {"fraction": 0.25, "seed": 0},
        },
    }


@pytest.mark.parametrize("name", ["tiny", "val_without_masks", "dev_split"])
def test_every_job_makes_something_all_asks_for(tmp_path: Path, name: str):
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(_configs(tmp_path)[name]))
    dag = subprocess.run(
        [
            str(SNAKEMAKE),
            "-s",
            str(ROOT / "workflow" / "Snakefile"),
            "-d",
            str(work),
            "--configfile",
            str(work / "config.yaml"),
            "--forceall",
            "--dag",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dag.returncode == 0, dag.stderr[-3000:]
    jobs = dict(NODE.findall(dag.stdout))
    (target,) = [job for job, rule in jobs.items() if rule == "all"]
    asked = {source for source, sink in EDGE.findall(dag.stdout) if sink == target}
    assert len(jobs) > 10
    assert {rule for job, rule in jobs.items() if job != target and job not in asked} == set()


def _checkpoints(train_dir: Path) -> dict[str, int]:
    return {str(p.relative_to(train_dir)): p.stat().st_mtime_ns for p in train_dir.rglob("*.pth")}


@pytest.mark.slow
def test_a_failed_training_is_retried_not_hidden(tiny_run: Path, tmp_path: Path):
    """Train, change a setting, the training fails: asking again for a result retries the training
    (and fails again) instead of answering with the previous setting's results; the revert finds
    the finished run; the failure touched nothing."""
    work = tmp_path / "project"
    shutil.copytree(tiny_run, work, symlinks=True)
    model = work / "results" / "models" / "demo_tiny"
    first = _checkpoints(model / "train")
    before = Selection.read(model / "best.json")
    metrics = "results/models/demo_tiny/val_metrics.json"
    config = yaml.safe_load((work / "config.yaml").read_text())
    original = yaml.safe_dump(config)

    config["models"]["demo_tiny"]["overrides"]["optim_wrapper.optimizer.lr"] = -1.0  # fails in training
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    run = run_snakemake(work, metrics)
    assert run.returncode != 0 and "Invalid learning rate" in (work / "logs/models/demo_tiny/train.log").read_text()
    assert _checkpoints(model / "train") == first

    for target in ([metrics], ["--until", "select"], []):
        dry = run_snakemake(work, "-n", *target)
        text = dry.stdout + dry.stderr
        assert dry.returncode == 0 and "Nothing to be done" not in text, text[-3000:]
        assert re.search(r"^train\s+1$", text, re.M) and re.search(r"^select\s+1$", text, re.M), text[-3000:]
    run = run_snakemake(work, metrics)
    assert run.returncode != 0 and not (model / "train.json").exists()

    (work / "config.yaml").write_text(original)  # the revert: the finished run, nothing retrained
    run = run_snakemake(work, metrics)
    assert run.returncode == 0, run.stderr[-4000:]
    assert _checkpoints(model / "train") == first
    assert Selection.read(model / "best.json").checkpoint == before.checkpoint
    assert "Nothing to be done" in (run_snakemake(work, "-n", metrics).stdout)

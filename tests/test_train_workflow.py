"""Through Snakemake: what does not change the weights (TTA, tracking, select_iter) does not retrain."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from _pipeline import ROOT, run_snakemake
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
    config["tracking"] = "mlflow"  # read by the train and select scripts, not a param: reruns nothing
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
    assert best.iter == 6 and Path(best.checkpoint).parent.parent == (train_dir / "runs").resolve()


def _checkpoints(train_dir: Path) -> dict[str, int]:
    return {str(p.relative_to(train_dir)): p.stat().st_mtime_ns for p in train_dir.rglob("*.pth")}


@pytest.mark.slow
def test_a_finished_run_survives_what_users_do(tiny_run: Path, tmp_path: Path):
    """On a mini root trained once: test images released later, a typo, a changed seed and its
    revert never lose the finished run; only the seed change trains (in a run of its own)."""
    data = tmp_path / "mini"
    shutil.copytree(tiny_run / "results" / "data" / "source", data)
    work = tmp_path / "project"
    work.mkdir()
    config = {**yaml.safe_load((tiny_run / "config.yaml").read_text()), "data_layout": "mini", "data_root": str(data)}
    config.pop("synthetic", None)
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    run = run_snakemake(work, "--until", "select")
    assert run.returncode == 0, run.stderr[-4000:]
    train_dir = work / "results" / "models" / "demo_tiny" / "train"
    first = _checkpoints(train_dir)
    assert len(first) >= 2 and all(name.startswith("runs/") for name in first)
    log = work / "logs" / "models" / "demo_tiny" / "train.log"

    # the challenge releases more test images: data steps rerun, the run is found finished
    for i, src in enumerate(sorted((data / "test" / "images").iterdir())[:2]):
        shutil.copy(src, data / "test" / "images" / f"late_{i}.jpg")
    log.unlink()  # (the step appends to it: each check below reads one job's log)
    run = run_snakemake(work, "--until", "select")
    assert run.returncode == 0, run.stderr[-4000:]
    assert "nothing to do" in log.read_text() and "training from iteration 0" not in log.read_text()
    assert _checkpoints(train_dir) == first

    # a typo is refused before any job; the run is untouched
    config["models"]["demo_tiny"]["overrides"]["train_cfg.max_iter"] = 24
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    run = run_snakemake(work, "--until", "select")
    assert run.returncode != 0 and "did you mean train_cfg.max_iters?" in run.stderr + run.stdout
    assert _checkpoints(train_dir) == first

    # another seed trains a run of its own; the revert finds the first one again
    del config["models"]["demo_tiny"]["overrides"]["train_cfg.max_iter"]
    config["models"]["demo_tiny"]["overrides"]["randomness.seed"] = 1
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    log.unlink()
    run = run_snakemake(work, "--until", "select")
    assert run.returncode == 0, run.stderr[-4000:]
    assert "training from iteration 0" in log.read_text() and "config.randomness.seed" in log.read_text()
    second = _checkpoints(train_dir)
    assert {k: v for k, v in second.items() if k in first} == first and len(second) == 2 * len(first)
    del config["models"]["demo_tiny"]["overrides"]["randomness.seed"]
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    log.unlink()
    run = run_snakemake(work, "--until", "select")
    assert run.returncode == 0, run.stderr[-4000:]
    assert "nothing to do" in log.read_text() and _checkpoints(train_dir) == second
    best = Selection.read(work / "results" / "models" / "demo_tiny" / "best.json")
    assert str(Path(best.checkpoint).relative_to(train_dir.resolve())) in first


@pytest.mark.slow
def test_an_edit_to_an_inherited_config_reruns_training(tiny_run: Path, tmp_path: Path):
    """The train rule depends on every file the model config inherits, nested bases included."""
    work = tmp_path / "project"
    shutil.copytree(tiny_run, work, symlinks=True)
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    config = yaml.safe_load((work / "config.yaml").read_text())
    config["models"]["demo_tiny"]["config"] = str(configs / "demo_tiny.py")  # same content, another folder
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    # mtime alone decides here: the question is whether the inherited file is an input at all
    mtime = ("--rerun-triggers", "mtime")
    run_snakemake(work, "--touch", *mtime)  # as if everything was made from this copy
    dry = run_snakemake(work, "-n", *mtime)
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-2000:]

    base = configs / "_base_" / "models" / "upernet_timm.py"
    base.write_text(base.read_text().replace("pool_scales=(1, 2, 3, 6)", "pool_scales=(1, 2, 3)"))
    dry = run_snakemake(work, "-n", *mtime)
    planned = _planned(dry.stdout + dry.stderr)
    assert dry.returncode == 0 and planned.get("train") == 1 and planned.get("evaluate") == 1, dry.stdout[-3000:]

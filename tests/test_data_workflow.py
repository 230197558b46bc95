"""The data rules under Snakemake: a broken mini dataset stops the run at validate."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from faceparse.data.synthetic import generate_dataset

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
TARGETS = ("results/data/stats.json", "results/data/flip.json")


def _run(workdir: Path, config: dict) -> subprocess.CompletedProcess:
    """Run just the data rules: a Snakefile of our own that includes common.smk and data.smk."""
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    (workdir / "Snakefile").write_text(
        "from snakemake.utils import validate\n"
        'configfile: "config.yaml"\n'
        f'validate(config, "{ROOT}/workflow/schemas/config.schema.yaml")\n'
        f'include: "{ROOT}/workflow/rules/common.smk"\n'
        f'include: "{ROOT}/workflow/rules/data.smk"\n'
    )
    cmd = [str(SNAKEMAKE), "-s", str(workdir / "Snakefile"), "-d", str(workdir), "--cores", "2", *TARGETS]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=workdir)


MODELS = {"demo_tiny": {"config": "configs/demo_tiny.py"}}


def test_broken_mini_dataset_stops_at_validate(tmp_path):
    data = tmp_path / "mini"
    generate_dataset(data, {"train": 4, "val": 2, "test": 2}, size=64, seed=1)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(data / "train" / "masks" / "train_00001.png")
    (data / "val" / "masks" / "val_00001.png").unlink()
    result = _run(tmp_path, {"data_layout": "mini", "data_root": str(data), "models": MODELS})
    assert result.returncode != 0
    assert "Error in rule validate" in result.stderr + result.stdout
    log = (tmp_path / "logs" / "data" / "validate.log").read_text()
    assert "train/masks/train_00001.png: RGB colour mask, expected single-channel label PNG" in log
    assert "val/images/val_00001.jpg: no mask" in log
    for out in ("validation.json", "class_frequency.png", "stats.json", "flip.json", "flipped"):
        assert not (tmp_path / "results" / "data" / out).exists(), out
    assert not (tmp_path / "logs" / "data" / "stats.log").exists()  # nothing downstream ran


@pytest.mark.slow
def test_synthetic_source_validate_flip_stats(tmp_path):
    config = {
        "synthetic": {"seed": 0, "size": 64, "counts": {"train": 4, "val": 2, "test": 2}},
        "train_on_val": True,
        "models": MODELS,
    }
    result = _run(tmp_path, config)
    assert result.returncode == 0, result.stderr[-4000:]
    data = tmp_path / "results" / "data"
    assert yaml.safe_load((data / "source" / "source.json").read_text())["splits"]["train"] == 4
    assert yaml.safe_load((data / "stats.json").read_text())["images"] == 6  # train + val
    assert len(list((data / "flipped" / "images").iterdir())) == 6


def _dry_run_reasons(workdir: Path) -> str:
    cmd = [str(SNAKEMAKE), "-s", str(workdir / "Snakefile"), "-d", str(workdir), "--cores", "2", "-n", *TARGETS]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def test_a_changed_mini_root_is_revalidated(tmp_path):
    """Snakemake sees a folder input only by the folder's mtime; the dataset fingerprint param
    makes validate (and what follows) rerun when a file is added or replaced inside it."""
    data = tmp_path / "mini"
    generate_dataset(data, {"train": 4, "val": 2, "test": 2}, size=64, seed=1)
    config = {"data_layout": "mini", "data_root": str(data), "models": MODELS}
    assert _run(tmp_path, config).returncode == 0
    assert "Nothing to be done" in _dry_run_reasons(tmp_path)

    masks = data / "train" / "masks"
    dir_mtime = masks.stat().st_mtime_ns
    mask = np.asarray(Image.open(masks / "train_00001.png")).copy()
    mask[:8] = 0
    Image.fromarray(mask).save(masks / "train_00001.png")  # replaced in place
    os.utime(masks, ns=(dir_mtime, dir_mtime))  # the folder's own mtime says nothing changed
    plan = _dry_run_reasons(tmp_path)
    assert "rule validate:" in plan and "params have changed" in plan.lower(), plan[-3000:]

    assert _run(tmp_path, config).returncode == 0
    generate_dataset(tmp_path / "extra", {"train": 1, "val": 1, "test": 1}, size=64, seed=5)
    for kind, suffix in (("images", ".jpg"), ("masks", ".png")):
        shutil.copy(
            tmp_path / "extra" / "train" / kind / f"train_00000{suffix}", data / "train" / kind / f"new{suffix}"
        )
    plan = _dry_run_reasons(tmp_path)
    assert "rule validate:" in plan and "rule flip:" in plan and "rule stats:" in plan, plan[-3000:]
    assert _run(tmp_path, config).returncode == 0
    assert (
        "new"
        in yaml.safe_load((tmp_path / "results" / "data" / "validation.json").read_text())["splits"]["train"]["names"]
    )


@pytest.mark.parametrize("layout", ["mini", "celebamask-hq"])
def test_a_layout_that_reads_a_root_needs_data_root(tmp_path, layout):
    """The schema says so (if/then on data_layout), before any job is planned."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"data_layout": layout, "models": MODELS}))
    cmd = [
        str(SNAKEMAKE),
        "-n",
        "-s",
        str(ROOT / "workflow" / "Snakefile"),
        "-d",
        str(tmp_path),
        "--configfile",
        str(tmp_path / "config.yaml"),
        "--replace-workflow-config",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "config: data_root: None is not of type 'string'" in output
    assert "properties" not in output  # the problem, not the whole schema
    assert "Job stats" not in output

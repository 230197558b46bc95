"""configs/runs/challenge_2025.yaml end to end on the CPU (training shortened): the later editions'
rules, selection by mF1, the masks archive and the solution folder, whose run.py (with the
training stack not importable) labels the test photos as the pipeline did; and the same run with
the val masks withheld, on a dev split."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import yaml
from PIL import Image

from _pipeline import ROOT, run_snakemake
from test_solution import _isolated_env
from test_startup import planned_rules, reordered

# compact_512's schedule, cut to 4 iterations of 2 images (checkpoint + val every 2)
SHORT = {
    "train_cfg.max_iters": 4,
    "train_cfg.val_interval": 2,
    "default_hooks.checkpoint.interval": 2,
    "train_dataloader.batch_size": 2,
    "train_dataloader.num_workers": 1,
    "val_dataloader.num_workers": 1,
    "param_scheduler.0.end": 2,
    "param_scheduler.1.begin": 2,
    "param_scheduler.1.end": 4,
}


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return 100.0 * float((a == b).mean())


@pytest.mark.slow
@pytest.mark.parametrize("val_masks", [True, False], ids=["val_masks", "dev_split"])
def test_challenge_2025_run_end_to_end(val_masks, tmp_path):
    from faceparse.data.synthetic import generate_dataset

    data = tmp_path / "dev-public"
    generate_dataset(data, {"train": 10, "val": 3, "test": 2}, size=128, seed=5)
    if not val_masks:
        shutil.rmtree(data / "val" / "masks")
    config = yaml.safe_load((ROOT / "configs" / "runs" / "challenge_2025.yaml").read_text())
    assert config["rules"] == {"max_params": 1821085, "pretrained": False, "ensembles": False}
    config["data_root"] = str(data)
    config["models"]["compact"].update(gpus=0, overrides=SHORT)
    work = tmp_path / "project"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    targets = [
        "results/models/compact/best.json",
        "results/submission/compact.masks.zip",
        "results/submission/compact_solution",
    ]
    if not val_masks:  # and the report: the leaderboard and provenance of a dev-split run
        targets += ["results/submission/val/compact.zip", "results/provenance/provenance.json"]
    run = run_snakemake(work, "--printshellcmds", *targets, timeout=1800)
    assert run.returncode == 0, run.stderr[-6000:]

    if val_masks:  # key order means nothing: the run config reordered plans no job; a value still does
        written = (work / "config.yaml").read_text()
        (work / "config.yaml").write_text(yaml.safe_dump(reordered(yaml.safe_load(written)), sort_keys=False))
        assert planned_rules(run_snakemake(work, "-n", *targets)) == set()
        changed = reordered(yaml.safe_load(written))
        changed["tta"]["scales"] = [1.0]
        (work / "config.yaml").write_text(yaml.safe_dump(changed, sort_keys=False))
        assert "solution" in planned_rules(run_snakemake(work, "-n", *targets))
        (work / "config.yaml").write_text(written)

    results = work / "results"
    best = json.loads((results / "models" / "compact" / "best.json").read_text())
    assert best["metric"] == "mF1" and best["split"] == ("val" if val_masks else "dev")
    test_pred = results / "models" / "compact" / "test_pred"
    stems = sorted(p.stem for p in (data / "test" / "images").glob("*.jpg"))
    with zipfile.ZipFile(results / "submission" / "compact.masks.zip") as zf:
        assert sorted(zf.namelist()) == [f"masks/{s}.png" for s in stems]
    solution = results / "submission" / "compact_solution"
    assert {p.name for p in solution.iterdir()} >= {"run.py", "compact.py", "ckpt.pth", "solution.json", "Readme.txt"}
    parity = json.loads((results / "submission" / "compact_solution.parity.json").read_text())
    assert parity["passed"] and parity["split"] == ("val" if val_masks else "dev")
    if not val_masks:
        with zipfile.ZipFile(results / "submission" / "val" / "compact.zip") as zf:
            assert sorted(zf.namelist()) == sorted(f"{p.stem}.png" for p in (data / "val" / "images").glob("*.jpg"))
        # the deliverables are hashed in the provenance record; the leaderboard says dev, not val
        outputs = json.loads((results / "provenance" / "provenance.json").read_text())["outputs"]
        assert {
            "results/submission/compact.masks.zip",
            "results/submission/val/compact.zip",
            "results/submission/compact_solution/run.py",
            "results/submission/compact_solution/ckpt.pth",
        } <= set(outputs)
        assert "Leaderboard: models and ensembles on dev" in (results / "report" / "leaderboard.html").read_text()

    # run.py alone, where faceparse, mmseg, mmcv, mmengine, timm and onnxruntime cannot be imported
    (tmp_path / "isolated").mkdir()
    env = _isolated_env(tmp_path / "isolated")
    for stem in stems:
        out = tmp_path / "graded" / f"{stem}.png"
        done = subprocess.run(
            [
                sys.executable,
                str(solution / "run.py"),
                "--input",
                str(data / "test" / "images" / f"{stem}.jpg"),
                "--output",
                str(out),
                "--weights",
                str(solution / "ckpt.pth"),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        graded = np.asarray(Image.open(out))
        assert graded.ndim == 2 and _agreement(graded, np.asarray(Image.open(test_pred / f"{stem}.png"))) >= 99.9

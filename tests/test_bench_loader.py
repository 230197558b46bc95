"""bench/bench_loader.py: the seed's training pipeline per worker, and the workers a training rate needs."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mmcv.ops")

REPO = Path(__file__).resolve().parents[1]


def test_seed_pipeline_rate_and_workers_needed(tmp_path):
    train_json = tmp_path / "train.json"
    train_json.write_text(
        json.dumps(
            {"images_per_s": 40.0, "config": "seed", "precision": "bf16", "batch_size": 4, "device_name": "a GPU"}
        )
    )
    out = tmp_path / "loader.json"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "bench_loader.py"),
            "--n",
            "3",
            "--passes",
            "1",
            "--workers",
            "1",
            "--train-json",
            str(train_json),
            "--cores",
            "2",
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    r = json.loads(out.read_text())
    assert r["config"].endswith("seed_convnext_xl.py") and r["images"] == 3
    single = r["per_worker"]
    assert single["images"] == 3 and single["sample_shape"] == [3, 512, 512] and single["images_per_s"] > 0
    (loader,) = r["dataloader"]
    assert loader["workers"] == 1 and loader["batch_size"] == 4 and loader["images"] == 3
    need = math.ceil(1.5 * 40.0 / single["images_per_s"])
    (train,) = r["train"]
    assert train["images_per_s"] == 40.0 and train["workers_needed"] == max(1, need)
    assert train["fits_cores"] == (need <= 2)
    assert "needs" in result.stdout and "worker" in result.stdout

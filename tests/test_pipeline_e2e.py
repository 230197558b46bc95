"""The whole DAG on a tiny synthetic set, in a temporary working directory."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from _pipeline import TINY_CONFIG, run_snakemake
from faceparse.records import Selection


@pytest.mark.slow
def test_dag_outputs_have_the_right_content(tiny_run: Path):
    results = tiny_run / "results"
    validation = json.loads((results / "data/validation.json").read_text())
    assert {s: validation["splits"][s]["images"] for s in ("train", "val", "test")} == {
        "train": 16,
        "val": 6,
        "test": 5,
    }

    stats = json.loads((results / "data/stats.json").read_text())
    assert stats["images"] == 16 and all(0 < m < 255 for m in stats["mean"]) and all(s > 0 for s in stats["std"])

    framing = json.loads((results / "data/framing.json").read_text())
    assert framing["masks"] == 16 and framing["flip"] and framing["size"] == [128, 128]
    (rx, ry), (lx, ly) = framing["points"]["r_eye"], framing["points"]["l_eye"]
    assert 0 < rx < 0.5 < lx < 1 and abs(rx - (1 - lx)) < 1e-9 and ry == pytest.approx(ly)  # flip: symmetric
    assert ry < framing["points"]["nose"][1] < framing["points"]["mouth"][1] < 1
    import onnx

    onnx_meta = {p.key: p.value for p in onnx.load(results / "models/demo_tiny/export/demo_tiny.onnx").metadata_props}
    assert json.loads(onnx_meta["faceparse"])["framing"] == framing  # travels with the model

    best = Selection.read(results / "models/demo_tiny/best.json")
    assert best.iter in (6, 12)
    assert Path(best.checkpoint).is_file()

    metrics = json.loads((results / "models/demo_tiny/val_metrics.json").read_text())
    for mode in ("no_tta", "tta"):
        assert 0.0 <= metrics[mode]["mIoU"] <= 100.0  # percent, as mmseg reports it
        assert len(metrics[mode]["IoU"]) == 19 and len(metrics[mode]["F1"]) == 19
        confusion = np.array(metrics[mode]["confusion"])
        assert confusion.shape == (19, 19) and confusion.sum() == 6 * 128 * 128

    test_names = sorted(validation["splits"]["test"]["names"])
    with zipfile.ZipFile(results / "submission/demo_tiny.zip") as zf:
        assert sorted(Path(n).stem for n in zf.namelist()) == test_names
        for name in zf.namelist():
            with zf.open(name) as fh:
                mask = Image.open(fh)
                mask.load()
            assert mask.mode == "L" and mask.size == (128, 128)
            assert np.asarray(mask).max() <= 18


@pytest.mark.slow
def test_rerun_is_a_no_op_and_report_builds(tiny_run: Path):
    dry = run_snakemake(tiny_run, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr

    report = run_snakemake(tiny_run, "--report", str(tiny_run / "report.zip"))
    assert report.returncode == 0, report.stderr[-3000:]
    with zipfile.ZipFile(tiny_run / "report.zip") as zf:
        assert any(n.endswith("report.html") for n in zf.namelist())


@pytest.mark.slow
def test_bad_input_stops_at_validate(tmp_path: Path):
    """A mini dataset with an RGB colour mask: validate names the file, nothing downstream runs."""
    root = tmp_path / "mini"
    for split in ("train", "val", "test"):
        (root / split / "images").mkdir(parents=True)
        if split != "test":
            (root / split / "masks").mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((64, 64, 3), 100, np.uint8)).save(root / split / "images" / f"{split}{i}.jpg")
            if split != "test":
                Image.fromarray(np.ones((64, 64), np.uint8)).save(root / split / "masks" / f"{split}{i}.png")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "train" / "masks" / "train1.png")
    config = dict(TINY_CONFIG, data_layout="mini", data_root=str(root))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(tmp_path)
    assert result.returncode != 0
    log = (tmp_path / "logs/data/validate.log").read_text()
    assert "train1.png" in log and "RGB" in log
    assert not (tmp_path / "results/data/validation.json").exists()
    assert not (tmp_path / "results/models").exists()

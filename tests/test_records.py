"""faceparse.records: atomic JSON, the training records with paths relative to themselves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceparse.records import Selection, TrainSummary, read_json, read_mask, sha256_file, write_json


def _run(root: Path) -> tuple[TrainSummary, Selection]:
    work = root / "results" / "models" / "m" / "train"
    work.mkdir(parents=True)
    for name in ("config.py", "iter_2.pth", "iter_4.pth"):
        (work / name).write_text(name)
    summary = TrainSummary(
        work_dir=str(work),
        config=str(work / "config.py"),
        checkpoints=[str(work / "iter_2.pth"), str(work / "iter_4.pth")],
        max_iters=4,
        val=[{"iter": 4, "mIoU": 50.0}],
    )
    return summary, Selection(checkpoint=str(work / "iter_4.pth"), iter=4, mIoU=50.0)


def test_training_records_survive_a_moved_project(tmp_path: Path):
    summary, selection = _run(tmp_path / "a")
    models = tmp_path / "a" / "results" / "models" / "m"
    summary.write(models / "train.json")
    selection.write(models / "best.json")
    raw = json.loads((models / "train.json").read_text())
    assert raw["checkpoints"] == ["train/iter_2.pth", "train/iter_4.pth"] and raw["config"] == "train/config.py"
    assert json.loads((models / "best.json").read_text())["checkpoint"] == "train/iter_4.pth"

    shutil.move(tmp_path / "a", tmp_path / "b")  # the project folder moves
    moved = tmp_path / "b" / "results" / "models" / "m"
    again = TrainSummary.read(moved / "train.json")
    assert again.checkpoints == [str(moved / "train" / "iter_2.pth"), str(moved / "train" / "iter_4.pth")]
    assert Path(again.config).read_text() == "config.py" and again.val == summary.val
    best = Selection.read(moved / "best.json")
    assert Path(best.checkpoint).read_text() == "iter_4.pth" and best.iter == 4


def test_old_absolute_records_and_bad_records(tmp_path: Path):
    summary, _ = _run(tmp_path)
    write_json(tmp_path / "train.json", vars(summary))  # as written before paths became relative
    assert TrainSummary.read(tmp_path / "train.json").checkpoints == summary.checkpoints
    write_json(tmp_path / "best.json", {"checkpoint": "x.pth"})
    with pytest.raises(ValueError, match=r"best.json: not a best.json record"):
        Selection.read(tmp_path / "best.json")
    with pytest.raises(FileNotFoundError, match=r"nope.json: missing"):
        read_json(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match=r"bad.json: not valid JSON"):
        read_json(tmp_path / "bad.json")


def test_write_json_is_atomic_and_refuses_nan(tmp_path: Path):
    write_json(tmp_path / "r.json", {"a": 1})
    with pytest.raises(ValueError):
        write_json(tmp_path / "r.json", {"a": float("nan")})
    assert read_json(tmp_path / "r.json") == {"a": 1}  # the old content is intact
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind
    assert len(sha256_file(tmp_path / "r.json")) == 64


def test_read_mask_gives_palette_indices(tmp_path: Path):
    labels = np.array([[0, 4], [18, 255]], np.uint8)
    mask = Image.frombytes("P", (2, 2), labels.tobytes())
    mask.putpalette([200, 10, 10] * 256)  # every index looks the same colour
    mask.save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), labels)
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match="rgb.png: expected a single-channel label mask"):
        read_mask(tmp_path / "rgb.png")

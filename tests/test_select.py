"""Checkpoint selection from a fabricated train.json."""

import json

import pytest

from faceparse.records import Selection
from faceparse.train.select import choose, select


def fabricate(tmp_path, iters=(8, 16, 24, 32), scores=(0.51, 0.63, 0.63, 0.60), best_copy=16):
    work = tmp_path / "train"
    work.mkdir()
    ckpts = []
    for it in iters:
        p = work / f"iter_{it}.pth"
        p.write_bytes(b"x")
        ckpts.append(str(p))
    if best_copy:
        p = work / f"best_mIoU_iter_{best_copy}.pth"
        p.write_bytes(b"x")
        ckpts.append(str(p))
    summary = {
        "work_dir": str(work),
        "config": str(work / "config.py"),
        "checkpoints": ckpts,
        "max_iters": max(iters),
        "val": [{"iter": i, "mIoU": s} for i, s in zip(iters, scores)],
    }
    path = tmp_path / "train.json"
    path.write_text(json.dumps(summary))
    return path, summary


def test_best_val_later_on_tie(tmp_path):
    path, _ = fabricate(tmp_path)
    best = select(path, tmp_path / "best.json")
    assert best["iter"] == 24 and best["mIoU"] == 0.63
    assert best["checkpoint"].endswith("/iter_24.pth")
    assert vars(Selection.read(tmp_path / "best.json")) == best
    assert json.loads((tmp_path / "best.json").read_text())["checkpoint"] == "train/iter_24.pth"  # relative


def test_prefers_plain_checkpoint_and_skips_deleted(tmp_path):
    _, summary = fabricate(tmp_path, scores=(0.5, 0.9, 0.6, 0.7))
    assert choose(summary)["checkpoint"].endswith("/iter_16.pth")
    (tmp_path / "train" / "iter_16.pth").unlink()  # max_keep_ckpts removed it; the best_ copy stays
    assert choose(summary)["checkpoint"].endswith("best_mIoU_iter_16.pth")
    (tmp_path / "train" / "best_mIoU_iter_16.pth").unlink()
    assert choose(summary)["iter"] == 32


def test_pinned_iteration(tmp_path):
    _, summary = fabricate(tmp_path)
    assert choose(summary, select_iter=8) == {
        "checkpoint": str(tmp_path / "train" / "iter_8.pth"),
        "iter": 8,
        "mIoU": 0.51,
        "metric": "mIoU",
        "score": 0.51,
        "split": "val",
    }
    with pytest.raises(ValueError, match="select_iter=12"):
        choose(summary, select_iter=12)


def test_unvalidated_checkpoints(tmp_path):
    _, summary = fabricate(tmp_path)
    summary["val"] = []
    with pytest.raises(ValueError, match="no val mIoU"):
        choose(summary)
    assert choose(summary, select_iter=32)["mIoU"] is None


def test_selection_by_f_score(tmp_path):
    """selection.metric: mF1 picks the best val mF1 (not the best mIoU) and best.json says so."""
    path, summary = fabricate(tmp_path, scores=(0.5, 0.9, 0.6, 0.7))
    for row, f1 in zip(summary["val"], (0.7, 0.6, 0.8, 0.75)):
        row["mF1"] = f1
    path.write_text(json.dumps(summary))
    best = select(path, tmp_path / "best.json", metric="mF1")
    assert best["iter"] == 24 and best["metric"] == "mF1" and best["score"] == 0.8 and best["mIoU"] == 0.6
    assert Selection.read(tmp_path / "best.json").metric == "mF1"
    assert select(path, tmp_path / "best_iou.json")["iter"] == 16  # the default: mIoU

    for row in summary["val"]:
        del row["mF1"]  # a run validated before mF1 was logged
    with pytest.raises(ValueError, match="no val mF1 .*FaceParseMetric"):
        choose(summary, metric="mF1")

"""val_metrics.json records whether val was trained on, and the report says so plainly."""

from __future__ import annotations

import json

import pytest

from faceparse.report.tables import NOT_HELD_OUT, esc, evaluation_html, provenance_html


def test_val_metrics_record_train_on_val(tmp_path):
    pytest.importorskip("mmcv.ops")
    from _tiny_segmentor import write_checkpoint, write_config, write_index, write_split
    from faceparse.predict.models import read_member
    from faceparse.predict.steps import evaluate

    config, checkpoint = write_config(tmp_path / "config.py"), write_checkpoint(tmp_path / "iter_10.pth")
    index = write_index(tmp_path, {"val": write_split(tmp_path, "val", 2, with_masks=True)})
    best, train = tmp_path / "best.json", tmp_path / "train.json"
    best.write_text(json.dumps({"checkpoint": str(checkpoint), "iter": 10, "mIoU": None}))
    # a train.json without train_on_val (written before it was recorded) reads as False (TrainSummary)
    for recorded, want in ((True, True), (False, False), (None, False)):
        summary = {
            "work_dir": str(tmp_path),
            "config": str(config),
            "checkpoints": [str(checkpoint)],
            "max_iters": 10,
            "val": [],
        }
        if recorded is not None:
            summary["train_on_val"] = recorded
        train.write_text(json.dumps(summary))
        metrics_json = tmp_path / f"m_{recorded}.json"
        evaluate(
            [read_member("m", best, train)],
            index,
            pred_dir=tmp_path / f"p_{recorded}",
            metrics_json=metrics_json,
            scales=[1.0],
            flip=False,
            batch_size=2,
            threads=1,
            device="cpu",
        )
        assert json.loads(metrics_json.read_text())["train_on_val"] is want


def test_report_says_when_val_is_not_held_out():
    scores = {"mIoU": 80.0, "mF1": 85.0, "aAcc": 95.0}
    trained_on = evaluation_html({"no_tta": scores, "tta": scores, "train_on_val": True}, model="m")
    held_out = evaluation_html({"no_tta": scores, "tta": scores, "train_on_val": False}, model="m")
    assert esc(NOT_HELD_OUT) in trained_on and "not held out" not in held_out
    prov = {
        "code": {},
        "data": {},
        "runtimes": [],
        "models": {
            "a": {"val": {"mIoU_tta": 80.0, "train_on_val": True}},
            "b": {"val": {"mIoU_tta": 70.0, "train_on_val": False}},
        },
    }
    page = provenance_html(prov)
    assert page.count(esc(NOT_HELD_OUT)) == 1 and page.count("(not held out: trained on val)") == 1

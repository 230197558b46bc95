"""The grading zip: a report draft whose numbers are the records', the masks, the solution and the
code, checked before it is kept; an incomplete one is refused with nothing written."""

from __future__ import annotations

import json
import zipfile

import pytest

from _pipeline import ROOT
from faceparse.deliver.grading import GradingError, build_grading_zip, report_facts, report_markdown
from faceparse.labels import CLASSES


def _scores(base: float) -> dict:
    return {
        "mIoU": base - 7.5,
        "mF1": base,
        "mF1_19": base + 0.5,
        "F1": {name: base - i / 10 for i, name in enumerate(CLASSES)},
    }


@pytest.fixture
def records(tmp_path) -> dict:
    """The records of a finished CompactFaceNet run, as the pipeline writes them."""
    model_dir = tmp_path / "results" / "models" / "m"
    model_dir.mkdir(parents=True)
    files = {
        "train_json": model_dir / "train.json",
        "best_json": model_dir / "best.json",
        "metrics_json": model_dir / "val_metrics.json",
        "parity_json": tmp_path / "parity.json",
        "benchmark_tsv": tmp_path / "train.tsv",
        "masks_check_json": tmp_path / "masks.check.json",
    }
    files["train_json"].write_text(
        json.dumps({"config": str(ROOT / "configs" / "compact_512.py"), "parameters": 1_693_203, "max_iters": 8000})
    )
    files["best_json"].write_text(json.dumps({"metric": "mF1", "split": "dev", "iter": 7200, "score": 86.25}))
    files["metrics_json"].write_text(json.dumps({"no_tta": _scores(86.25), "tta": _scores(87.5)}))
    files["parity_json"].write_text(json.dumps({"images": 20, "agreement_percent": 99.97, "passed": True}))
    files["benchmark_tsv"].write_text("s\th:m:s\tmax_rss\n3725.5\t1:02:05\t2048\n")
    masks = tmp_path / "m.masks.zip"
    with zipfile.ZipFile(masks, "w") as zf:
        for stem in ("a", "b", "c"):
            zf.writestr(f"masks/{stem}.png", f"png {stem}".encode())
    files["masks_check_json"].write_text(json.dumps({"ok": True, "files": 3}))
    solution = tmp_path / "m_solution"
    solution.mkdir()
    for name in ("run.py", "compact.py", "ckpt.pth", "solution.json", "Readme.txt"):
        (solution / name).write_bytes(name.encode() * 3)
    figures = {"training_curves.png": tmp_path / "curves.png", "val_predictions.jpg": tmp_path / "grid.jpg"}
    for path in figures.values():
        path.write_bytes(b"picture")
    code = tmp_path / "code"
    (code / "src").mkdir(parents=True)
    (code / "README.md").write_text("read me")
    (code / "src" / "net.py").write_text("import torch")
    return {"files": files, "masks": masks, "solution": solution, "figures": figures, "code": code}


def _facts(records, **changes) -> dict:
    return report_facts(
        "m",
        **records["files"],
        max_params=1_821_085,
        tta={"scales": [0.75, 1.0, 1.25], "flip": True},
        code={"commit": "0123456789abcdef", "dirty": False},
        **changes,
    )


def _build(records, tmp_path, facts) -> dict:
    return build_grading_zip(
        "m",
        tmp_path / "out" / "m_grading.zip",
        tmp_path / "out" / "m_grading.check.json",
        facts=facts,
        masks_zip=records["masks"],
        solution_dir=records["solution"],
        figures=records["figures"],
        code_root=records["code"],
        code_files=["README.md", "src/net.py"],
    )


def test_the_facts_are_the_records(records):
    facts = _facts(records)
    assert facts["network"]["parameters"] == 1_693_203 and facts["network"]["backbone"] == "CompactFaceBackbone"
    assert facts["selection"] == {"metric": "mF1", "split": "dev", "iter": 7200, "score": 86.25}
    assert facts["scores"]["no_tta"]["mF1"] == 86.25 and facts["scores"]["tta"]["mF1"] == 87.5
    assert facts["scores"]["tta"]["mIoU"] == 80.0 and facts["scores"]["split"] == "dev"
    assert facts["class_f1"]["hair"] == {"no_tta": 86.25 - 1.3, "tta": 87.5 - 1.3}
    assert facts["schedule"]["training_seconds"] == 3725.5 and facts["schedule"]["max_iters"] == 8000
    assert [loss["type"] for loss in facts["losses"]] == ["ClassWeightedCrossEntropyLoss", "ClassMeanDiceLoss"]
    assert any(step.startswith("RandomFlipSwapLR") for step in facts["augmentation"])
    assert facts["test_masks"] == 3 and facts["parity"]["agreement_percent"] == 99.97


def test_the_draft_states_the_records_numbers(records):
    text = report_markdown(_facts(records))
    assert "**1,693,203**" in text and "fewer than 1,821,085" in text
    assert "| without TTA | 86.25 | 86.75 | 78.75 |" in text
    assert "| with TTA | 87.50 | 88.00 | 80.00 |" in text
    assert "| hair | 84.95 | 86.20 |" in text
    assert "## Results on dev" in text and "iteration 7,200" in text
    assert "8,000 iterations of batch" in text and "training time 62.1 min" in text
    assert "0123456789ab" in text and "3 test masks" in text


def test_the_grading_zip_holds_every_part(records, tmp_path):
    summary = _build(records, tmp_path, _facts(records))
    zip_path = tmp_path / "out" / "m_grading.zip"
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        facts = json.loads(zf.read("report/facts.json"))
        draft = zf.read("report/report.md").decode()
        assert zf.read("masks/b.png") == b"png b"
        assert zf.read("solution/ckpt.pth") == (records["solution"] / "ckpt.pth").read_bytes()
    assert {"Readme.txt", "report/report.html", "report/training_curves.png", "report/val_predictions.jpg"} <= names
    assert {"masks/a.png", "masks/b.png", "masks/c.png", "code/README.md", "code/src/net.py"} <= names
    assert {f"solution/{n}" for n in ("run.py", "compact.py", "ckpt.pth", "solution.json", "Readme.txt")} <= names
    assert facts == _facts(records) and "![Training curves](training_curves.png)" in draft
    assert summary["zip_bytes"] == zip_path.stat().st_size and summary["parts"]["masks"] == 3
    assert json.loads((tmp_path / "out" / "m_grading.check.json").read_text())["ok"] is True


@pytest.mark.parametrize("damage", ["parity", "ckpt", "figure"])
def test_an_incomplete_grading_zip_is_refused_with_nothing_written(records, tmp_path, damage):
    facts = _facts(records)
    if damage == "parity":
        facts["parity"]["passed"] = False
    elif damage == "ckpt":
        (records["solution"] / "ckpt.pth").unlink()
    else:
        records["figures"]["training_curves.png"].unlink()
    with pytest.raises(GradingError, match="grading zip refused"):
        _build(records, tmp_path, facts)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

"""The course's release zips as the data source of a run: unpacked once while the DAG is built, the
test zip added a week later, a hostile zip refused before any job; and a run without test images
yet, whose test steps wait for them."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import yaml

from _pipeline import ROOT, run_snakemake
from test_challenge_2025 import SHORT
from test_startup import planned_rules

TEST_STEPS = {"predict", "package", "package_masks", "colourise", "submission_summary"}


def course_zips(tmp_path: Path, val_masks: bool = True) -> tuple[Path, Path]:
    """``dev-public.zip`` as the course hands it out (a top folder, macOS junk, train and val) and
    ``test-public.zip`` (test images only, no top folder), from generated faces."""
    from faceparse.data.synthetic import generate_dataset

    data = tmp_path / "generated"
    generate_dataset(data, {"train": 10, "val": 3, "test": 2}, size=128, seed=5)
    dev, test = tmp_path / "dev-public.zip", tmp_path / "test-public.zip"
    with zipfile.ZipFile(dev, "w") as zf:
        zf.writestr("__MACOSX/dev-public/._train", b"\0\5\26\7")
        zf.writestr("dev-public/.DS_Store", b"junk")
        for path in sorted(data.rglob("*")):
            rel = path.relative_to(data).as_posix()
            if path.is_file() and not rel.startswith("test/") and (val_masks or not rel.startswith("val/masks")):
                zf.write(path, f"dev-public/{rel}")
    with zipfile.ZipFile(test, "w") as zf:
        for path in sorted((data / "test" / "images").iterdir()):
            zf.write(path, f"test/images/{path.name}")
    return dev, test


def project(tmp_path: Path, data_root, overrides: dict | None = None) -> Path:
    """A project folder running configs/runs/challenge_2025.yaml (training cut short) on ``data_root``."""
    config = yaml.safe_load((ROOT / "configs" / "runs" / "challenge_2025.yaml").read_text())
    config["data_root"] = data_root
    config["models"]["compact"].update(gpus=0, overrides=overrides or SHORT)
    work = tmp_path / "project"
    work.mkdir(exist_ok=True)
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    return work


def test_a_release_zip_is_unpacked_once_and_the_test_zip_added_later(tmp_path):
    dev, test = course_zips(tmp_path)
    work = project(tmp_path, str(dev))
    planned = planned_rules(run_snakemake(work, "-n"))
    release = work / "results" / "data" / "release"
    assert {"validate", "train", "select", "evaluate", "solution"} <= planned
    assert not planned & TEST_STEPS  # no test images yet: their steps wait
    assert sorted(p.name for p in release.iterdir()) == [".release.json", "train", "val"]
    record = json.loads((release / ".release.json").read_text())
    assert record["files"] == 26 and any("__MACOSX" in s for s in record["skipped"])
    stamp = (release / "train" / "images").stat().st_mtime_ns
    planned_rules(run_snakemake(work, "-n"))
    assert (release / "train" / "images").stat().st_mtime_ns == stamp  # unchanged zip: not unpacked again

    project(tmp_path, [str(dev), str(test)])
    planned = planned_rules(run_snakemake(work, "-n"))
    assert TEST_STEPS <= planned
    assert sorted(p.name for p in (release / "test" / "images").iterdir()) == ["test_00000.jpg", "test_00001.jpg"]


@pytest.mark.parametrize(
    "entry, problem",
    [
        ("../../evil.jpg", "'..' in the path"),
        ("/etc/evil.jpg", "absolute"),
    ],
)
def test_a_hostile_release_zip_stops_the_workflow_in_one_line_with_nothing_written(tmp_path, entry, problem):
    dev, _ = course_zips(tmp_path)
    with zipfile.ZipFile(dev, "a") as zf:
        zf.writestr(entry, b"x")
    work = project(tmp_path, str(dev))
    result = run_snakemake(work, "-n")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if f"{dev}: {entry}" in line]
    assert len(lines) == 1 and problem in lines[0], output[-3000:]
    assert not (work / "results").exists()


@pytest.mark.slow
@pytest.mark.parametrize("val_masks", [True, False], ids=["val_masks", "dev_split"])
def test_the_2025_run_on_the_course_zips_then_the_test_zip_without_retraining(tmp_path, val_masks):
    dev, test = course_zips(tmp_path, val_masks)
    work = project(tmp_path, str(dev))
    first = run_snakemake(work, timeout=1800)
    assert first.returncode == 0, first.stderr[-6000:]
    results = work / "results"
    assert (results / "submission" / "compact_solution" / "run.py").is_file()
    assert not (results / "submission" / "compact.masks.zip").exists()
    runs = sorted((results / "models" / "compact" / "train" / "runs").iterdir())
    checkpoints = {p: p.stat().st_mtime_ns for p in runs[0].rglob("*.pth")}
    assert len(runs) == 1 and checkpoints

    project(tmp_path, [str(dev), str(test)])
    second = run_snakemake(work, timeout=1800)
    assert second.returncode == 0, second.stderr[-6000:]
    assert sorted((results / "models" / "compact" / "train" / "runs").iterdir()) == runs
    assert {p: p.stat().st_mtime_ns for p in runs[0].rglob("*.pth")} == checkpoints  # not retrained
    with zipfile.ZipFile(results / "submission" / "compact.masks.zip") as zf:
        assert sorted(zf.namelist()) == ["masks/test_00000.png", "masks/test_00001.png"]
    provenance = json.loads((results / "provenance" / "provenance.json").read_text())
    assert {"results/submission/compact.masks.zip", "results/submission/compact_grading.zip"} <= set(
        provenance["outputs"]
    )
    deliverables = provenance["models"]["compact"]["deliverables"]
    assert deliverables["masks"]["ok"] and deliverables["solution"]["passed"] and deliverables["grading"]["ok"]
    assert planned_rules(run_snakemake(work, "-n")) == set()

    # the grading zip: every part, and a report draft whose numbers are the records'
    model_dir = results / "models" / "compact"
    scored = "val_metrics.json" if val_masks else "dev_metrics.json"  # no val masks: dev selects and is scored
    train, best, metrics = (json.loads((model_dir / f).read_text()) for f in ("train.json", "best.json", scored))
    with zipfile.ZipFile(results / "submission" / "compact_grading.zip") as zf:
        names = set(zf.namelist())
        facts = json.loads(zf.read("report/facts.json"))
        draft = zf.read("report/report.md").decode()
    assert {"Readme.txt", "masks/test_00000.png", "solution/run.py", "solution/ckpt.pth"} <= names
    assert {"code/src/faceparse/networks/compact.py", "code/configs/compact_512.py", "code/README.md"} <= names
    assert not any(name.startswith(("code/results/", "code/.venv/")) for name in names)
    assert facts["network"]["parameters"] == train["parameters"] and f"**{train['parameters']:,}**" in draft
    assert facts["selection"] == {key: best[key] for key in ("metric", "split", "iter", "score")}
    assert best["split"] == ("val" if val_masks else "dev")
    for which, label in (("no_tta", "without TTA"), ("tta", "with TTA")):
        row = (
            f"| {label} | {metrics[which]['mF1']:.2f} | {metrics[which]['mF1_19']:.2f} | {metrics[which]['mIoU']:.2f} |"
        )
        assert facts["scores"][which]["mF1"] == metrics[which]["mF1"] and row in draft
    assert facts["class_f1"]["skin"]["tta"] == metrics["tta"]["F1"]["skin"]

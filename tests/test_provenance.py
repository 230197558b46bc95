"""Provenance: the dataset/code fingerprints, git state, versions, checkpoints and run times — and
that the record changes when the data, the config or the code does."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceparse.report import provenance as prov
from faceparse.report.tables import provenance_html

# The fabricated pipeline outputs (tiny images, markers, metrics) of the report tests.
from test_report import fabricate  # noqa: E402 - tests/ is on sys.path under pytest


def _index(root: Path, names=("a", "b", "c")) -> Path:
    """A two-split dataset index with masks for train, none for test."""
    rng = np.random.default_rng(1)
    index = {"root": str(root), "layout": "mini", "splits": {}}
    for split in ("train", "test"):
        img_dir = root / split / "images"
        img_dir.mkdir(parents=True)
        for n in names:
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(img_dir / f"{n}.jpg")
        entry = {
            "image_dir": str(img_dir),
            "mask_dir": None,
            "image_suffix": ".jpg",
            "names": list(names),
            "images": len(names),
        }
        if split == "train":
            mask_dir = root / split / "masks"
            mask_dir.mkdir(parents=True)
            for n in names:
                Image.fromarray(rng.integers(0, 19, (8, 8), dtype=np.uint8)).save(mask_dir / f"{n}.png")
            entry["mask_dir"] = str(mask_dir)
        index["splits"][split] = entry
    path = root / "validation.json"
    path.write_text(json.dumps(index))
    return path


# ----------------------------------------------------------------------------- data


def test_sha256_file(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 3_000_000)
    assert prov.sha256_file(tmp_path / "f") == hashlib.sha256(b"x" * 3_000_000).hexdigest()


def test_dataset_files_names_are_relative_to_the_split(tmp_path):
    files = prov.dataset_files(_index(tmp_path))
    assert [name for _, name, _ in files][:4] == [
        "train/images/a.jpg",
        "train/images/b.jpg",
        "train/images/c.jpg",
        "train/masks/a.png",
    ]
    assert len(files) == 9  # 3 train images + 3 masks + 3 test images


def test_dataset_fingerprint_is_deterministic_and_parallel_safe(tmp_path):
    index = _index(tmp_path)
    one = prov.dataset_fingerprint(index, threads=1)
    two = prov.dataset_fingerprint(index, threads=2)
    assert one == two
    assert one["files"] == 9 and set(one["splits"]) == {"train", "test"}
    assert one["splits"]["train"]["files"] == 6
    assert one["bytes"] == sum(p.stat().st_size for p in tmp_path.rglob("*") if p.suffix in (".jpg", ".png"))


def test_dataset_fingerprint_changes_with_content_of_the_same_size(tmp_path):
    index = _index(tmp_path)
    before = prov.dataset_fingerprint(index)
    mask = tmp_path / "train" / "masks" / "b.png"
    data = bytearray(mask.read_bytes())
    data[-20] ^= 0xFF  # same size, different content
    mask.write_bytes(bytes(data))
    after = prov.dataset_fingerprint(index)
    assert after["sha256"] != before["sha256"]
    assert after["splits"]["train"]["sha256"] != before["splits"]["train"]["sha256"]
    assert after["splits"]["test"] == before["splits"]["test"]
    assert after["bytes"] == before["bytes"]


def test_dataset_fingerprint_changes_with_names_and_files(tmp_path):
    index = _index(tmp_path)
    before = prov.dataset_fingerprint(index)["sha256"]
    data = json.loads(index.read_text())
    # a renamed file
    shutil.move(tmp_path / "test" / "images" / "c.jpg", tmp_path / "test" / "images" / "z.jpg")
    data["splits"]["test"]["names"] = ["a", "b", "z"]
    index.write_text(json.dumps(data))
    renamed = prov.dataset_fingerprint(index)["sha256"]
    assert renamed != before
    # a removed file
    data["splits"]["test"]["names"] = ["a", "b"]
    index.write_text(json.dumps(data))
    assert prov.dataset_fingerprint(index)["sha256"] not in (before, renamed)


def test_dataset_fingerprint_survives_a_move(tmp_path):
    before = prov.dataset_fingerprint(_index(tmp_path / "one"))["sha256"]
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    moved = tmp_path / "two" / "validation.json"
    moved.write_text(moved.read_text().replace(str(tmp_path / "one"), str(tmp_path / "two")))
    assert prov.dataset_fingerprint(moved)["sha256"] == before


# ----------------------------------------------------------------------------- code


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "src" / "pkg").mkdir(parents=True)
    (repo / "src" / "pkg" / "mod.py").write_text("X = 1\n")
    (repo / "workflow").mkdir()
    (repo / "workflow" / "Snakefile").write_text("rule all:\n")
    (repo / "README.md").write_text("readme\n")
    (repo / ".gitignore").write_text("results/\n__pycache__/\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "init")
    return repo


def test_git_state_clean_dirty_untracked(repo):
    state = prov.git_state(repo)
    assert state["commit"] == _git(repo, "rev-parse", "HEAD") and len(state["commit"]) == 40
    assert state["dirty"] is False and state["changed"] == []
    (repo / "results").mkdir()
    (repo / "results" / "x.json").write_text("{}")  # ignored: still clean
    assert prov.git_state(repo)["dirty"] is False
    (repo / "src" / "pkg" / "mod.py").write_text("X = 2\n")
    state = prov.git_state(repo)
    assert state["dirty"] is True and state["changed"] == ["src/pkg/mod.py"]
    _git(repo, "checkout", "--", "src/pkg/mod.py")
    (repo / "src" / "pkg" / "new.py").write_text("Y = 1\n")
    state = prov.git_state(repo)
    assert state["dirty"] is True and state["changed"] == ["src/pkg/new.py"]


def test_git_state_outside_git(tmp_path):
    assert prov.git_state(tmp_path) == {
        "commit": None,
        "branch": None,
        "dirty": None,
        "changed": [],
        "changed_count": 0,
    }


def test_code_fingerprint_follows_the_code_only(repo):
    before = prov.code_fingerprint(repo)
    assert before["files"] == 2 and before["paths"] == ["src", "workflow"]
    (repo / "README.md").write_text("other readme\n")  # not code
    (repo / "src" / "pkg" / "__pycache__").mkdir()
    (repo / "src" / "pkg" / "__pycache__" / "mod.pyc").write_bytes(b"\0")  # ignored
    assert prov.code_fingerprint(repo) == before
    (repo / "src" / "pkg" / "mod.py").write_text("X = 2\n")  # an uncommitted edit
    edited = prov.code_fingerprint(repo)
    assert edited["sha256"] != before["sha256"]
    (repo / "workflow" / "extra.smk").write_text("# new\n")  # an untracked new file counts
    assert prov.code_fingerprint(repo)["sha256"] not in (before["sha256"], edited["sha256"])


def test_code_fingerprint_without_git_matches_git(repo, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy, ignore=shutil.ignore_patterns(".git"))
    (copy / "src" / "pkg" / "__pycache__").mkdir()
    (copy / "src" / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    assert prov.code_fingerprint(copy) == prov.code_fingerprint(repo)


def test_code_state_changes_with_commit_and_edits(repo):
    first = prov.code_state(repo)
    assert first["commit"] and first["dirty"] is False and first["code_sha256"] and first["snakemake"]
    (repo / "src" / "pkg" / "mod.py").write_text("X = 3\n")
    dirty = prov.code_state(repo)
    assert dirty != first and dirty["dirty"] is True and dirty["commit"] == first["commit"]
    _git(repo, "commit", "-q", "-am", "edit")
    committed = prov.code_state(repo)
    assert committed["commit"] != first["commit"] and committed["dirty"] is False
    assert committed["code_sha256"] == dirty["code_sha256"]


# ----------------------------------------------------------------------------- environment, runs


def test_package_versions():
    versions = prov.package_versions(["numpy", "no-such-package-xyz"])
    assert versions == {"numpy": np.__version__, "no-such-package-xyz": None}
    env = prov.environment(["numpy"])
    assert env["packages"] == {"numpy": np.__version__} and env["python"].count(".") == 2


def test_read_benchmarks(tmp_path):
    bench = tmp_path / "benchmarks"
    (bench / "models" / "m").mkdir(parents=True)
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    (bench / "models" / "m" / "train.tsv").write_text(
        header + "10.0\t0:00:10\t100.5\t1\t1\t1\t0\t0\t50\t9.0\n" + "20.0\t0:00:20\t300.5\t1\t1\t1\t0\t0\t50\t19.0\n"
    )
    (bench / "stats.tsv").write_text(header + "1.5\t0:00:01\t-\t-\t-\t-\t-\t-\t-\t-\n")
    (bench / "empty.tsv").write_text(header)
    steps = {s["step"]: s for s in prov.read_benchmarks(bench)}
    assert set(steps) == {"models/m/train", "stats"}
    assert steps["models/m/train"]["s"] == 15.0 and steps["models/m/train"]["runs"] == 2
    assert steps["models/m/train"]["max_rss"] == 200.5 and steps["models/m/train"]["cpu_time"] == 14.0
    assert steps["stats"]["s"] == 1.5 and steps["stats"]["max_rss"] is None
    assert prov.read_benchmarks(tmp_path / "none") == []


def test_checkpoint_record(tmp_path):
    fab = fabricate(tmp_path / "fab", size=32)
    record = prov.checkpoint_record(fab["best"], fab["train"])
    ckpt = json.loads(fab["best"].read_text())["checkpoint"]
    assert record["iter"] == 200 and record["select_mIoU"] == 50.0
    assert record["checkpoint"] == {"path": ckpt, "bytes": 1000, "sha256": prov.sha256_file(ckpt)}
    assert record["resolved_config"]["text"].startswith("model = dict(")


# ----------------------------------------------------------------------------- the record

CODE = {
    "commit": "a" * 40,
    "branch": "main",
    "dirty": False,
    "changed": [],
    "changed_count": 0,
    "code_sha256": "c" * 64,
    "code_files": 3,
    "code_paths": ["src"],
    "snakemake": "9.0.0",
}
CONFIG = {
    "data_layout": "synthetic",
    "models": {"toy": {"config": "configs/toy.py", "gpus": 0}},
    "tta": {"scales": [1.0], "flip": True},
}


def _record(fab: dict, tmp_path: Path, config=CONFIG, code=CODE) -> dict:
    bench = tmp_path / "bench"
    if not bench.is_dir():
        bench.mkdir()
        (bench / "train.tsv").write_text("s\th:m:s\n3.0\t0:00:03\n")
    files = {"toy": {k: fab[k] for k in ("train", "best", "metrics", "zip", "check")}}
    return prov.write_provenance(
        json_out=tmp_path / "p.json",
        html_out=tmp_path / "p.html",
        runtimes_png=tmp_path / "r.png",
        validation_json=fab["validation"],
        stats_json=fab["stats"],
        source_json=fab["source"],
        models=files,
        config=config,
        code=code,
        bench_dir=bench,
        outputs=[fab["zip"], fab["metrics"]],
        threads=2,
    )


def _stable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "created"}


@pytest.fixture(scope="module")
def fab(tmp_path_factory) -> dict:
    return fabricate(tmp_path_factory.mktemp("fabp"), size=32)


def test_provenance_record(fab, tmp_path):
    record = _record(fab, tmp_path)
    on_disk = json.loads((tmp_path / "p.json").read_text())
    assert on_disk == json.loads(json.dumps(record))
    assert record["code"]["commit"] == "a" * 40 and record["code"]["sha256"] == "c" * 64
    assert record["config"] == CONFIG and "data_layout: synthetic" in record["config_yaml"]
    assert record["data"]["sha256"] == prov.dataset_fingerprint(fab["validation"])["sha256"]
    assert record["data"]["images"] == {"train": 6, "val": 5, "test": 4}
    assert record["data"]["source"] == {"generator": "test", "seed": 0}
    toy = record["models"]["toy"]
    assert toy["checkpoint"]["sha256"] == prov.sha256_file(json.loads(fab["best"].read_text())["checkpoint"])
    assert toy["submission"]["sha256"] == prov.sha256_file(fab["zip"])
    assert toy["val"]["mIoU_tta"] == json.loads(fab["metrics"].read_text())["tta"]["mIoU"]
    assert [s["step"] for s in record["runtimes"]] == ["train"]
    assert set(record["outputs"]) == {str(fab["zip"]), str(fab["metrics"])}
    assert record["environment"]["packages"]["numpy"] == np.__version__
    html = (tmp_path / "p.html").read_text()
    for needle in (
        "a" * 40,
        record["data"]["sha256"],
        toy["checkpoint"]["sha256"],
        "data_layout: synthetic",
        "numpy",
        "Run time per step",
        "model = dict(",
    ):
        assert needle in html, needle
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_provenance_changes_with_data_config_and_code(tmp_path):
    fab = fabricate(tmp_path / "fab", size=32)
    (tmp_path / "a").mkdir()
    base = _stable(_record(fab, tmp_path / "a"))
    assert _stable(_record(fab, tmp_path / "a")) == base  # same inputs, same record
    # config
    other = json.loads(json.dumps(CONFIG))
    other["tta"]["scales"] = [0.5, 1.0]
    changed = _stable(_record(fab, tmp_path / "a", config=other))
    assert changed["config"] != base["config"] and changed["data"] == base["data"]
    # code
    changed = _stable(_record(fab, tmp_path / "a", code=CODE | {"dirty": True, "code_sha256": "d" * 64}))
    assert changed["code"]["dirty"] is True and changed["code"] != base["code"]
    # data: one val mask edited
    mask = Path(json.loads(fab["validation"].read_text())["splits"]["val"]["mask_dir"]) / "val001.png"
    arr = np.asarray(Image.open(mask)).copy()
    arr[0, 0] = (arr[0, 0] + 1) % 19
    Image.fromarray(arr).save(mask)
    changed = _stable(_record(fab, tmp_path / "a"))
    assert changed["data"]["sha256"] != base["data"]["sha256"]
    assert changed["data"]["splits"]["val"]["sha256"] != base["data"]["splits"]["val"]["sha256"]
    assert changed["data"]["splits"]["train"] == base["data"]["splits"]["train"]


def test_provenance_html_outside_git():
    html = provenance_html({"code": {"commit": None, "dirty": None}, "data": {}, "models": {}, "runtimes": []})
    assert "not a git checkout" in html

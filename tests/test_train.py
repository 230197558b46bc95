"""build_config, training with resume, train.json."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceparse.labels import PALETTE, SWAP_LUT
from faceparse.records import TrainSummary

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "configs" / "demo_tiny.py"
SEED = REPO / "configs" / "seed_convnext_xl.py"


def _face(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A crude face: skin disc, hair, nose, mouth and a left/right eye pair."""
    yy, xx = np.mgrid[:size, :size] / size
    cx, cy = 0.5 + rng.uniform(-0.05, 0.05), 0.55 + rng.uniform(-0.05, 0.05)
    mask = np.zeros((size, size), np.uint8)
    mask[(xx - cx) ** 2 + (yy - cy) ** 2 < 0.12] = 1
    mask[(yy < cy - 0.25) & ((xx - cx) ** 2 + (yy - cy) ** 2 < 0.2)] = 13
    mask[(np.abs(xx - cx) < 0.04) & (np.abs(yy - cy) < 0.08)] = 2
    mask[(np.abs(xx - cx) < 0.12) & (np.abs(yy - cy - 0.17) < 0.03)] = 10
    mask[(xx - cx + 0.15) ** 2 + (yy - cy + 0.1) ** 2 < 0.003] = 4  # person's left eye: image left here
    mask[(xx - cx - 0.15) ** 2 + (yy - cy + 0.1) ** 2 < 0.003] = 5
    image = np.array(PALETTE, np.float32)[mask] * 0.8 + rng.normal(0, 12, (size, size, 3))
    image[..., 0] += 40 * (xx < 0.5)  # a left/right cue, so the eye pair is learnable
    return np.clip(image, 0, 255).astype(np.uint8), mask


def make_tiny_dataset(root: Path, counts=None, size: int = 64, seed: int = 0, ignored_rows: int = 0) -> dict:
    """A mini-layout data set plus validation.json / flip.json / stats.json, as the data rules write them.

    ``ignored_rows``: the bottom rows of every mask are 255 (unlabelled, ignored in training).
    """
    counts = counts or {"train": 6, "val": 3}
    rng = np.random.default_rng(seed)
    index = {"root": str(root), "layout": "mini", "splits": {}}
    pixels = []
    for split, n in counts.items():
        img_dir, mask_dir = root / split / "images", root / split / "masks"
        img_dir.mkdir(parents=True)
        mask_dir.mkdir(parents=True)
        names = []
        for i in range(n):
            image, mask = _face(rng, size)
            if ignored_rows:
                mask[-ignored_rows:] = 255
            name = f"{split}{i:03d}"
            Image.fromarray(image).save(img_dir / f"{name}.jpg", quality=95)
            Image.fromarray(mask).save(mask_dir / f"{name}.png")
            names.append(name)
            pixels.append(image.reshape(-1, 3))
            if split == "train":
                fdir = root / "flipped"
                (fdir / "images").mkdir(parents=True, exist_ok=True)
                (fdir / "masks").mkdir(parents=True, exist_ok=True)
                Image.fromarray(image[:, ::-1]).save(fdir / "images" / f"{name}_flip.png")
                Image.fromarray(SWAP_LUT[mask[:, ::-1]]).save(fdir / "masks" / f"{name}_flip.png")
        index["splits"][split] = {
            "image_dir": str(img_dir),
            "mask_dir": str(mask_dir),
            "image_suffix": ".jpg",
            "names": names,
            "images": n,
            "size": [size, size],
        }
    flip = {
        "image_dir": str(root / "flipped" / "images"),
        "mask_dir": str(root / "flipped" / "masks"),
        "image_suffix": ".png",
        "names": [f"{n}_flip" for n in index["splits"]["train"]["names"]],
        "images": counts["train"],
    }
    px = np.concatenate(pixels).astype(np.float64)
    stats = {"mean": px.mean(0).tolist(), "std": px.std(0).tolist(), "images": sum(counts.values())}
    paths = {}
    for name, content in (("validation", index), ("flip", flip), ("stats", stats)):
        paths[name] = root / f"{name}.json"
        paths[name].write_text(json.dumps(content))
    return paths


def tiny_config(tmp_path: Path, base: Path = DEMO, crop: int = 64) -> Path:
    """A config inheriting `base` with a small crop for fast tests."""
    path = tmp_path / "tiny_config.py"
    path.write_text(f"""
_base_ = [{str(base)!r}]
crop_size = ({crop}, {crop})
model = dict(data_preprocessor=dict(size=crop_size, size_divisor=None))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlipSwapLR', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
""")
    return path


FAST = {
    "train_cfg.max_iters": 4,
    "train_cfg.val_interval": 2,
    "default_hooks.checkpoint.interval": 2,
    "default_hooks.logger.interval": 1,
    "param_scheduler.0.end": 2,
    "param_scheduler.1.begin": 2,
    "param_scheduler.1.end": 4,
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("data"))


def test_build_config_datasets_and_device(data, tmp_path):
    from faceparse.mm.config import build_config

    cfg = build_config(
        DEMO,
        data["validation"],
        data["stats"],
        flip=data["flip"],
        train_on_val=True,
        overrides={"train_cfg.max_iters": 300, "train_dataloader.batch_size": 3},
        work_dir=tmp_path / "train",
        gpus=0,
    )
    ds = cfg.train_dataloader.dataset
    assert ds.type == "ConcatDataset" and len(ds.datasets) == 3
    train, flip, val = ds.datasets
    assert train.data_prefix.img_path.endswith("train/images") and train.img_suffix == ".jpg"
    assert flip.img_suffix == ".png"
    assert Path(flip.ann_file).read_text().split() == [f"train{i:03d}_flip" for i in range(6)]
    assert Path(val.ann_file).read_text().split() == ["val000", "val001", "val002"]
    assert train.pipeline == cfg.train_pipeline  # the template's pipeline
    assert cfg.val_dataloader.dataset.pipeline == cfg.test_pipeline
    assert cfg.test_dataloader.dataset.ann_file == cfg.val_dataloader.dataset.ann_file
    assert cfg.train_dataloader.batch_size == 3
    stats = json.loads(Path(data["stats"]).read_text())
    assert cfg.model.data_preprocessor.mean == pytest.approx(stats["mean"])
    assert cfg.work_dir == str((tmp_path / "train").resolve())
    # the poly schedule follows a changed max_iters
    assert cfg.train_cfg.max_iters == 300 and cfg.param_scheduler[-1].end == 300

    only_train = build_config(DEMO, data["validation"], data["stats"], work_dir=tmp_path / "t2")
    assert only_train.train_dataloader.dataset.type == "FaceParseDataset"


def test_build_config_seed_cpu_and_gpu(data, tmp_path):
    from faceparse.mm.config import build_config

    cpu = build_config(SEED, data["validation"], data["stats"], work_dir=tmp_path / "a", gpus=0)
    assert cpu.optim_wrapper.type == "OptimWrapper" and "loss_scale" not in cpu.optim_wrapper
    assert cpu.model.decode_head.norm_cfg.type == "BN" and cpu.env_cfg.dist_cfg.backend == "gloo"
    gpu = build_config(SEED, data["validation"], data["stats"], work_dir=tmp_path / "b", gpus=1)
    assert gpu.optim_wrapper.type == "AmpOptimWrapper" and gpu.optim_wrapper.loss_scale == "dynamic"
    assert gpu.model.decode_head.norm_cfg.type == "SyncBN" and gpu.env_cfg.dist_cfg.backend == "nccl"


def _run(train_json: Path) -> Path:
    """The run folder train.json names (under {work_dir}/runs/)."""
    return Path(TrainSummary.read(train_json).work_dir)


def _train_steps(work_dir: Path) -> list[list[int]]:
    """Training iterations logged by each (re)start, in order."""
    runs = []
    for scalars in sorted(work_dir.glob("*/vis_data/scalars.json")):
        steps = [
            json.loads(line)["step"]
            for line in scalars.read_text().splitlines()
            if line.strip() and "loss" in json.loads(line)
        ]
        runs.append(steps)
    return runs


def test_train_resumes_from_last_checkpoint(data, tmp_path):
    from faceparse.train.step import train

    config = tiny_config(tmp_path)
    work_dir, out = tmp_path / "models" / "m" / "train", tmp_path / "models" / "m" / "train.json"
    first = train(
        config, data["validation"], data["stats"], out, work_dir, flip=data["flip"], overrides=FAST, threads=1
    )
    assert [Path(c).name for c in first["checkpoints"]] == ["iter_2.pth", "iter_4.pth"]
    assert [v["iter"] for v in first["val"]] == [2, 4]
    assert all(0.0 <= v["mIoU"] <= 100.0 for v in first["val"])  # percent
    assert vars(TrainSummary.read(out)) == first
    run = _run(out)
    assert run.parent == (work_dir / "runs").resolve()
    assert first["config"] == str(run / "config.py") and first["max_iters"] == 4
    assert first["parameters"] == 12_039_443  # demo_tiny's, as the challenge counts them
    assert set(first["val"][0]) == {"iter", "mIoU", "mF1", "mF1_19"}  # FaceParseMetric's scores

    # A longer rerun continues from iter 4, not from 0, with the schedule stretched to 6.
    second = train(
        config,
        data["validation"],
        data["stats"],
        out,
        work_dir,
        flip=data["flip"],
        overrides={**FAST, "train_cfg.max_iters": 6, "param_scheduler.1.end": 6},
        threads=1,
    )
    assert [Path(c).name for c in second["checkpoints"]] == ["iter_2.pth", "iter_4.pth", "iter_6.pth"]
    assert [v["iter"] for v in second["val"]] == [2, 4, 6]
    assert _run(out) == run  # a longer run of the same recipe is the same run
    assert _train_steps(run) == [[1, 2, 3, 4], [5, 6]]

    # Already finished: a rerun does not train again.
    third = train(
        config,
        data["validation"],
        data["stats"],
        out,
        work_dir,
        flip=data["flip"],
        overrides={**FAST, "train_cfg.max_iters": 6, "param_scheduler.1.end": 6},
        threads=1,
    )
    assert third["checkpoints"] == second["checkpoints"] and len(_train_steps(run)) == 2


def _lrs(work_dir: Path) -> dict[int, float]:
    lrs = {}
    for scalars in sorted(work_dir.glob("*/vis_data/scalars.json")):
        for line in scalars.read_text().splitlines():
            rec = json.loads(line)
            if "lr" in rec:
                lrs[rec["step"]] = rec["lr"]
    return lrs


def test_resume_with_longer_schedule_matches_uninterrupted(data, tmp_path):
    """max_iters raised after a finished run: the lr follows the new schedule from the resumed iter."""
    from faceparse.train.step import train

    config = tiny_config(tmp_path)
    overrides = {**FAST, "train_cfg.val_interval": 100}
    overrides.pop("param_scheduler.1.end")  # follows max_iters
    resumed = tmp_path / "resumed"
    train(
        config,
        data["validation"],
        data["stats"],
        resumed / "train.json",
        resumed / "train",
        overrides={**overrides, "train_cfg.max_iters": 4},
        threads=1,
    )
    train(
        config,
        data["validation"],
        data["stats"],
        resumed / "train.json",
        resumed / "train",
        overrides={**overrides, "train_cfg.max_iters": 8},
        threads=1,
    )
    straight = tmp_path / "straight"
    train(
        config,
        data["validation"],
        data["stats"],
        straight / "train.json",
        straight / "train",
        overrides={**overrides, "train_cfg.max_iters": 8},
        threads=1,
    )
    got, want = _lrs(_run(resumed / "train.json")), _lrs(_run(straight / "train.json"))
    assert sorted(got) == list(range(1, 9))
    assert got[4] == 0.0  # the first run decayed to zero at its end ...
    assert [got[i] for i in range(5, 9)] == pytest.approx([want[i] for i in range(5, 9)], rel=1e-6)
    assert got[5] > got[6] > got[7] > 0  # ... the resumed one follows the 8-iteration schedule
    log = "\n".join(p.read_text() for p in _run(resumed / "train.json").glob("*/*.log"))
    assert "ResumeScheduleHook: PolyLR.end 4 (checkpoint) -> 8 (config)" in log


def _training_pids(marker: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "faceparse.train.process" in cmdline and marker in cmdline:
                pids.append(int(proc.name))
    return pids


@pytest.mark.slow
def test_interrupted_run_resumes(data, tmp_path):
    """SIGTERM to the step (as Snakemake/SLURM send) stops the training child too; the rerun resumes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from faceparse.train.step import train

    config = tiny_config(tmp_path)
    work_dir, out = tmp_path / "train", tmp_path / "train.json"
    overrides = {**FAST, "train_cfg.max_iters": 200, "param_scheduler.1.end": 200, "train_cfg.val_interval": 1000}
    script = (
        f"from faceparse.train.step import train\n"
        f"train({str(config)!r}, {str(data['validation'])!r}, {str(data['stats'])!r}, {str(out)!r}, "
        f"{str(work_dir)!r}, overrides={overrides!r}, threads=1)\n"
    )
    step = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    deadline = time.monotonic() + 120
    while not list(work_dir.glob("runs/*/iter_4.pth")):
        assert step.poll() is None and time.monotonic() < deadline, "training did not reach iter 4"
        time.sleep(0.2)
    run = next(work_dir.glob("runs/*/iter_4.pth")).parent
    step.send_signal(signal.SIGTERM)
    assert step.wait(timeout=90) != 0
    time.sleep(1)
    assert _training_pids(str(work_dir)) == []  # no orphaned training
    assert not out.exists()
    # mmengine points last_checkpoint at a checkpoint only once it is completely written
    done = int(re.search(r"iter_(\d+)\.pth", (run / "last_checkpoint").read_text()).group(1))
    assert done >= 2

    summary = train(
        config,
        data["validation"],
        data["stats"],
        out,
        work_dir,
        overrides={**overrides, "train_cfg.max_iters": done + 2, "param_scheduler.1.end": done + 2},
        threads=1,
    )
    assert _run(out) == run.resolve()
    assert _train_steps(run)[-1] == [done + 1, done + 2]  # continued after the last checkpoint, not from 0
    assert Path(summary["checkpoints"][-1]).name == f"iter_{done + 2}.pth"


def test_short_run_fits_the_schedule():
    """max_iters below the warm-up: the schedule is scaled, every end after its begin."""
    from faceparse.model_configs import _fit_schedule

    schedulers = [dict(type="LinearLR", begin=0, end=30), dict(type="PolyLR", begin=30, end=800)]
    _fit_schedule(schedulers, 800, 12, {})
    assert schedulers[1]["end"] == 12
    assert all(s["end"] > s["begin"] for s in schedulers)
    assert schedulers[0]["end"] <= 12

    kept = [dict(type="LinearLR", begin=0, end=30), dict(type="PolyLR", begin=30, end=800)]
    _fit_schedule(kept, 800, 400, {})
    assert kept == [dict(type="LinearLR", begin=0, end=30), dict(type="PolyLR", begin=30, end=400)]


# --------------------------------------------------------------------------- a run belongs to its inputs


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_fingerprint_ignores_paths_length_and_selection(data, tmp_path):
    """Moved data, another work_dir, a longer run, other logging/checkpointing or a pinned
    checkpoint keep the fingerprint; the data's content, a training value or the GPUs change it."""
    from faceparse.mm.config import build_config
    from faceparse.train.fingerprint import fingerprint_changes, training_fingerprint

    def fingerprint(d=data, work="a", overrides=None, gpus=0, keep=()):
        cfg = build_config(
            DEMO,
            d["validation"],
            d["stats"],
            flip=d["flip"],
            overrides=overrides,
            work_dir=tmp_path / work,
            gpus=gpus,
            keep_iters=keep,
        )
        return training_fingerprint(cfg, d["validation"], d["stats"], d["flip"], False, gpus, 1)

    base = fingerprint()
    text = json.dumps(base["inputs"])
    assert (tmp_path / "a" / "splits").is_dir()
    assert str(tmp_path) not in text and str(Path(data["validation"]).parent) not in text  # no paths
    moved = make_tiny_dataset(tmp_path / "moved_data")  # same content, other folder
    same = [
        fingerprint(moved, work="b"),
        fingerprint(
            overrides={
                "train_cfg.max_iters": 1600,
                "train_cfg.val_interval": 50,
                "default_hooks.logger.interval": 1,
                "default_hooks.checkpoint.max_keep_ckpts": 2,
            }
        ),
        fingerprint(keep=[800]),
    ]
    assert [f["sha256"] for f in same] == [base["sha256"]] * 3

    other_data = make_tiny_dataset(tmp_path / "other_data", seed=1)
    changed = fingerprint(other_data)
    assert changed["sha256"] != base["sha256"]
    assert "stats.mean" in fingerprint_changes(base, changed)
    lr = fingerprint(overrides={"optim_wrapper.optimizer.lr": 1e-3})
    assert fingerprint_changes(base, lr) == ["config.optim_wrapper.optimizer.lr"]
    assert fingerprint(gpus=1)["sha256"] != base["sha256"]
    warm_up = fingerprint(overrides={"param_scheduler.0.end": 60})  # not the end of the run: the recipe
    assert fingerprint_changes(base, warm_up) == ["config.param_scheduler.0.end"]


def test_changed_inputs_start_a_new_run_and_a_revert_finds_the_old_one(data, tmp_path, caplog):
    """Each fingerprint trains in its own runs/ folder: a change starts from 0 beside the finished
    run, and changing back finds it again (nothing retrained, its files untouched)."""
    from faceparse.train.step import train

    config = tiny_config(tmp_path)
    work_dir, out = tmp_path / "m" / "train", tmp_path / "m" / "train.json"
    train(config, data["validation"], data["stats"], out, work_dir, flip=data["flip"], overrides=FAST, threads=1)
    first = _run(out)
    first_files = {p.name: (_sha(p), p.stat().st_mtime_ns) for p in first.glob("*.pth")}
    assert json.loads((first / "fingerprint.json").read_text())["sha256"] == json.loads(out.read_text())["fingerprint"]
    assert first.name == json.loads(out.read_text())["fingerprint"][:16]

    # a changed training override: a new run from 0; the first one is kept as it is
    caplog.set_level("INFO", logger="faceparse.train.step")
    lr = {**FAST, "optim_wrapper.optimizer.lr": 1e-3}
    train(config, data["validation"], data["stats"], out, work_dir, flip=data["flip"], overrides=lr, threads=1)
    second = _run(out)
    assert second != first and _train_steps(second) == [[1, 2, 3, 4]]
    assert "training from iteration 0" in caplog.text and "config.optim_wrapper.optimizer.lr" in caplog.text
    assert {p.name: (_sha(p), p.stat().st_mtime_ns) for p in first.glob("*.pth")} == first_files

    # other training data: a third run
    other = make_tiny_dataset(tmp_path / "other", seed=1)
    train(config, other["validation"], other["stats"], out, work_dir, flip=other["flip"], overrides=FAST, threads=1)
    assert _run(out) not in (first, second)
    assert sorted(p.name for p in (work_dir / "runs").iterdir()) == sorted([first.name, second.name, _run(out).name])

    # back to the first inputs: its run is found again, nothing trained
    caplog.clear()
    summary = train(
        config, data["validation"], data["stats"], out, work_dir, flip=data["flip"], overrides=FAST, threads=1
    )
    assert _run(out) == first and _train_steps(first) == [[1, 2, 3, 4]]
    assert {p.name: (_sha(p), p.stat().st_mtime_ns) for p in first.glob("*.pth")} == first_files
    assert [Path(c).name for c in summary["checkpoints"]] == ["iter_2.pth", "iter_4.pth"]
    assert "training from iteration 0" not in caplog.text

    # pinning a checkpoint only: the same run, nothing retrained
    train(
        config,
        data["validation"],
        data["stats"],
        out,
        work_dir,
        flip=data["flip"],
        overrides=FAST,
        threads=1,
        select_iter=2,
    )
    assert _run(out) == first and _train_steps(first) == [[1, 2, 3, 4]]
    assert "PinnedCheckpointHook" in (first / "config.py").read_text()


def test_test_images_and_held_out_val_do_not_change_the_fingerprint(data, tmp_path):
    """Only what can change the weights is in the fingerprint: adding test images, or val images
    while val is held out, keeps it; val images change it with train_on_val; train images do."""
    from faceparse.mm.config import build_config
    from faceparse.train.fingerprint import training_fingerprint

    def fingerprint(index: dict, train_on_val: bool = False) -> str:
        path = tmp_path / "validation.json"
        path.write_text(json.dumps(index))
        cfg = build_config(
            DEMO, path, data["stats"], flip=data["flip"], train_on_val=train_on_val, work_dir=tmp_path / "w"
        )
        return training_fingerprint(cfg, path, data["stats"], data["flip"], train_on_val, 0, 1)["sha256"]

    index = json.loads(Path(data["validation"]).read_text())
    base, base_val = fingerprint(index), fingerprint(index, train_on_val=True)
    with_test = json.loads(json.dumps(index))
    with_test["splits"]["test"] = {
        "image_dir": "/t",
        "mask_dir": None,
        "image_suffix": ".jpg",
        "names": ["t0"],
        "images": 1,
        "size": [64, 64],
    }
    assert fingerprint(with_test) == base and fingerprint(with_test, train_on_val=True) == base_val
    more_val = json.loads(json.dumps(index))
    more_val["splits"]["val"]["names"].append("val003")
    more_val["splits"]["val"]["images"] += 1
    assert fingerprint(more_val) == base
    assert fingerprint(more_val, train_on_val=True) != base_val
    more_train = json.loads(json.dumps(index))
    more_train["splits"]["train"]["names"] = more_train["splits"]["train"]["names"][:-1]
    assert fingerprint(more_train) != base


def test_a_failed_job_leaves_the_runs_as_they_were(data, tmp_path, monkeypatch):
    """A job that fails before training (no GPU for gpus=1) adds nothing and moves nothing; after
    the fix the finished run is found again."""
    from faceparse import gpus as gpu_locks
    from faceparse.train.step import train

    config = tiny_config(tmp_path)
    work_dir, out = tmp_path / "m" / "train", tmp_path / "m" / "train.json"
    train(config, data["validation"], data["stats"], out, work_dir, overrides=FAST, threads=1)
    run = _run(out)

    def state() -> dict[str, int | None]:  # every path, and each file's mtime
        return {
            str(p.relative_to(work_dir)): p.stat().st_mtime_ns if p.is_file() else None for p in work_dir.rglob("*")
        }

    before = state()

    monkeypatch.setattr(gpu_locks, "visible_devices", lambda: [])
    with pytest.raises(RuntimeError, match="need 1 GPU"):
        train(config, data["validation"], data["stats"], out, work_dir, overrides=FAST, threads=1, gpus=1)
    assert state() == before

    train(config, data["validation"], data["stats"], out, work_dir, overrides=FAST, threads=1)
    assert _run(out) == run and _train_steps(run) == [[1, 2, 3, 4]]


def test_a_run_of_the_layout_before_the_store_is_adopted_not_retrained(data, tmp_path):
    """A work_dir trained before runs/ existed (its run in train/ itself, one in train.previous/,
    fingerprints over every split) moves into runs/ under its fingerprint as now scoped, and resumes."""
    from faceparse.train.fingerprint import fingerprint_of
    from faceparse.train.runs import list_runs
    from faceparse.train.step import train

    config = tiny_config(tmp_path)
    scratch, out = tmp_path / "scratch" / "train", tmp_path / "m" / "train.json"
    lr = {**FAST, "optim_wrapper.optimizer.lr": 1e-3}
    made = {}
    for name, overrides in (("fast", FAST), ("lr", lr)):
        train(
            config,
            data["validation"],
            data["stats"],
            scratch.with_name("train.json"),
            scratch,
            overrides=overrides,
            threads=1,
        )
        made[name] = _run(scratch.with_name("train.json"))
    work_dir = tmp_path / "m" / "train"  # the old layout: the latest run in train/, the one before aside
    shutil.copytree(made["lr"], work_dir)
    shutil.copytree(made["fast"], work_dir.with_name("train.previous"))
    index = json.loads(Path(data["validation"]).read_text())
    for folder in (work_dir, work_dir.with_name("train.previous")):  # fingerprints as the old layout wrote them
        recorded = json.loads((folder / "fingerprint.json").read_text())
        recorded["inputs"]["data"] = {
            "layout": "mini",
            "splits": {
                s: {k: v for k, v in e.items() if k not in ("image_dir", "mask_dir")}
                for s, e in index["splits"].items()
            },
        }
        recorded["sha256"] = "0" * 64
        (folder / "fingerprint.json").write_text(json.dumps(recorded))
        assert fingerprint_of(recorded["inputs"])["sha256"][:16] in (made["lr"].name, made["fast"].name)
    checkpoint = _sha(work_dir / "iter_4.pth")

    train(config, data["validation"], data["stats"], out, work_dir, overrides=lr, threads=1)
    assert _run(out) == (work_dir / "runs" / made["lr"].name).resolve()
    assert _train_steps(_run(out)) == [[1, 2, 3, 4]] and _sha(_run(out) / "iter_4.pth") == checkpoint
    assert not work_dir.with_name("train.previous").exists() and not list(work_dir.glob("*.pth"))
    assert sorted(r.name for r in list_runs(work_dir)) == sorted(p.name for p in made.values())
    train(config, data["validation"], data["stats"], out, work_dir, overrides=FAST, threads=1)
    assert _run(out).name == made["fast"].name and _train_steps(_run(out)) == [[1, 2, 3, 4]]


def test_runs_are_listed_and_removed_only_when_named(data, tmp_path, capsys):
    from faceparse.train.runs import main
    from faceparse.train.step import train

    config = tiny_config(tmp_path)
    models = tmp_path / "results" / "models"
    work_dir, out = models / "m" / "train", models / "m" / "train.json"
    train(config, data["validation"], data["stats"], out, work_dir, overrides=FAST, threads=1)
    old = _run(out)
    train(
        config,
        data["validation"],
        data["stats"],
        out,
        work_dir,
        threads=1,
        overrides={**FAST, "optim_wrapper.optimizer.lr": 1e-3},
    )
    current = _run(out)

    assert main(["--models-dir", str(models), "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].split()[:2] == ["m", old.name] and lines[1].endswith("current")
    assert "iter 4" in lines[0] and ("KB" in lines[0] or "MB" in lines[0])

    assert main(["--models-dir", str(models), "remove", "m", current.name]) == 2  # the current one: refused
    assert main(["--models-dir", str(models), "remove", "m", old.name, "nope"]) == 2  # all names checked first
    assert "no run named nope" in capsys.readouterr().err and old.is_dir() and current.is_dir()
    assert main(["--models-dir", str(models), "remove", "m", old.name]) == 0
    assert not old.exists() and current.is_dir()


def test_resume_after_moving_the_project_and_a_truncated_checkpoint(data, tmp_path, capfd):
    from faceparse.train.checkpoints import loadable_checkpoints
    from faceparse.train.step import train

    config = tiny_config(tmp_path)
    project = tmp_path / "project"
    train(
        config, data["validation"], data["stats"], project / "train.json", project / "train", overrides=FAST, threads=1
    )

    moved = tmp_path / "moved"
    project.rename(moved)
    store, out = moved / "train", moved / "train.json"
    work_dir = _run(out)  # train.json's paths are relative: the run is found where it is now
    assert work_dir.parent == (store / "runs").resolve()
    assert str(project / "train") in (work_dir / "last_checkpoint").read_text()  # mmengine's path dangles
    longer = {**FAST, "train_cfg.max_iters": 6, "param_scheduler.1.end": 6}
    train(config, data["validation"], data["stats"], out, store, overrides=longer, threads=1)
    assert _train_steps(work_dir) == [[1, 2, 3, 4], [5, 6]]

    # killed while writing iter_6 (cut short) and an empty last_checkpoint: resume from iter_4
    newest = work_dir / "iter_6.pth"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    (work_dir / "last_checkpoint").write_text("")
    assert [Path(c).name for c in loadable_checkpoints(work_dir)] == ["iter_2.pth", "iter_4.pth"]
    capfd.readouterr()
    summary = train(
        config,
        data["validation"],
        data["stats"],
        out,
        store,
        overrides={**FAST, "train_cfg.max_iters": 8, "param_scheduler.1.end": 8},
        threads=1,
    )
    text = "".join(capfd.readouterr())
    assert "iter_6.pth does not load" in text and f"resuming from {work_dir.resolve() / 'iter_4.pth'}" in text
    assert _train_steps(work_dir)[-1] == [5, 6, 7, 8]
    assert [Path(c).name for c in summary["checkpoints"]] == ["iter_2.pth", "iter_4.pth", "iter_6.pth", "iter_8.pth"]
    assert [v["iter"] for v in summary["val"]] == [2, 4, 6, 8]  # iteration 6 once, from the run that kept it

    # a dangling last_checkpoint of a finished run is pointed back into the work_dir
    (work_dir / "last_checkpoint").write_text(str(project / "train" / "runs" / work_dir.name / "iter_8.pth"))
    train(
        config,
        data["validation"],
        data["stats"],
        out,
        store,
        overrides={**FAST, "train_cfg.max_iters": 8, "param_scheduler.1.end": 8},
        threads=1,
    )
    assert (work_dir / "last_checkpoint").read_text() == str(work_dir.resolve() / "iter_8.pth")
    assert len(_train_steps(work_dir)) == 3


def test_pinned_checkpoint_survives_rotation(data, tmp_path):
    from faceparse.train.select import select
    from faceparse.train.step import train

    config = tiny_config(tmp_path)
    overrides = {
        **FAST,
        "train_cfg.max_iters": 8,
        "param_scheduler.1.end": 8,
        "train_cfg.val_interval": 100,
        "default_hooks.checkpoint.max_keep_ckpts": 2,
    }
    out = tmp_path / "train.json"
    summary = train(
        config,
        data["validation"],
        data["stats"],
        out,
        tmp_path / "train",
        overrides=overrides,
        threads=1,
        select_iter=2,
    )
    # the newest 2 rotate (iter_4 was deleted), the pinned iter_2 stays
    assert [Path(c).name for c in summary["checkpoints"]] == ["iter_2.pth", "iter_6.pth", "iter_8.pth"]
    best = select(out, tmp_path / "best.json", select_iter=2)
    assert best["iter"] == 2 and Path(best["checkpoint"]).is_file()

    # a pinned iteration that will never be saved is refused before any training
    for select_iter, message in (
        (3, "select_iter=3 is not a checkpoint iteration"),
        (10, "select_iter=10 is after train_cfg.max_iters=8"),
    ):
        with pytest.raises(ValueError, match=message):
            train(
                config,
                data["validation"],
                data["stats"],
                tmp_path / "no.json",
                tmp_path / "refused",
                overrides=overrides,
                threads=1,
                select_iter=select_iter,
            )
        assert not list((tmp_path / "refused").glob("*.pth"))


def test_total_batch_is_split_over_processes(data, tmp_path):
    from faceparse.mm.config import build_config

    cfg = build_config(DEMO, data["validation"], data["stats"], work_dir=tmp_path / "w", processes=2)
    assert cfg.train_dataloader.batch_size == 2  # the recipe's 4, over 2 processes
    with pytest.raises(ValueError, match=r"demo_tiny.py: train_dataloader.batch_size=3 .* split over 2 GPUs"):
        build_config(
            DEMO,
            data["validation"],
            data["stats"],
            work_dir=tmp_path / "w",
            processes=2,
            overrides={"train_dataloader.batch_size": 3},
        )


def test_config_values_cannot_become_code(data, tmp_path):
    """Override keys must be dotted names and model names plain words: in build_config and the schema."""
    from snakemake.utils import validate

    from faceparse.mm.config import build_config

    with pytest.raises(ValueError, match=r"demo_tiny.py: .*override keys are dotted names"):
        build_config(
            DEMO,
            data["validation"],
            data["stats"],
            work_dir=tmp_path / "w",
            overrides={"train_cfg.max_iters=1\nimport os; os.system('x')\nx": 1},
        )
    schema = str(REPO / "workflow" / "schemas" / "config.schema.yaml")

    def config(name="demo", key="train_cfg.max_iters"):
        return {"models": {name: {"config": "configs/demo_tiny.py", "overrides": {key: 10}}}}

    validate(config(key="param_scheduler.1.end"), schema)
    for bad in (
        config(name="a/../b"),
        config(name="demo\n"),
        config(name="x'"),
        config(key="a.b)\nimport os"),
        config(key="a..b"),
        config(key="a.b\n"),
        config(key="1a"),
    ):
        with pytest.raises(Exception, match="does not match"):
            validate(bad, schema)


def _tensorboard_scalars(folder: Path) -> dict[str, list[int]]:
    """{tag: steps} of every event file in ``folder``, read by TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [e.step for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_curves_continue_across_a_resume_and_mark_the_selection(data, tmp_path):
    from faceparse.train.select import select
    from faceparse.train.step import train

    config = tiny_config(tmp_path)
    out = tmp_path / "train.json"
    train(config, data["validation"], data["stats"], out, tmp_path / "train", overrides=FAST, threads=1)
    folder = _run(out) / "tensorboard"
    first = _tensorboard_scalars(folder)
    assert {"loss", "lr", "mIoU", "mF1"} <= set(first), sorted(first)
    assert first["loss"] == [1, 2, 3, 4] and first["mIoU"] == [2, 4]

    longer = {**FAST, "train_cfg.max_iters": 6, "param_scheduler.1.end": 6}
    train(config, data["validation"], data["stats"], out, tmp_path / "train", overrides=longer, threads=1)
    resumed = _tensorboard_scalars(folder)  # the same folder: one curve, continued
    assert resumed["loss"] == [1, 2, 3, 4, 5, 6] and resumed["mIoU"] == [2, 4, 6]

    best = select(out, tmp_path / "best.json", metric="mF1")
    assert _tensorboard_scalars(folder)["selected/mF1"] == [best["iter"]]

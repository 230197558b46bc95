"""The later editions' deliverables: the masks/ archive and the solution folder (run.py with PyTorch,
OpenCV, Pillow and numpy only) of a CompactFaceNet model, against the pipeline's own predictions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from _pipeline import ROOT, run_snakemake
from faceparse.deliver.package import package
from faceparse.records import Selection, TrainSummary, read_mask, split_files

SCALES = [0.75, 1.25]
# (H, W): odd sizes, so that rounding in the resizes and (with test padding) the padding show
VAL_SIZES = [(220, 300), (257, 191), (128, 128)]
TEST_SIZES = [(300, 220), (211, 333)]
STATS = {"mean": [121.5, 104.25, 95.0], "std": [61.0, 57.5, 56.25]}
TINY = {
    "model.backbone.detail": [8, 12, 16],
    "model.backbone.context": [16, 24],
    "model.backbone.decoder": [16, 12, 8, 8],
}
# a framing step's record (faceparse.data.framing), as the solution step receives it
FRAMING = {"format": "faceparse-framing-1", "size": [256, 256], "points": {"r_eye": [0.4, 0.4], "l_eye": [0.6, 0.4]}}
BLOCKED = ("faceparse", "mmseg", "mmcv", "mmengine", "timm", "onnxruntime")


def _photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth colour gradients with a few blobs: regions a random network labels differently."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    image = np.stack([200 * xx, 200 * yy, 120 + 100 * np.sin(6 * xx * yy)], axis=-1)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(10, 50)
        image[(np.mgrid[0:h, 0:w][0] - cy) ** 2 + (np.mgrid[0:h, 0:w][1] - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
    return np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)


def _split(root: Path, split: str, sizes: list[tuple[int, int]], rng: np.random.Generator) -> dict:
    images, masks = root / split / "images", root / split / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    names = [f"{i + 1:04d}" for i in range(len(sizes))]
    for name, (h, w) in zip(names, sizes):
        Image.fromarray(_photo(rng, h, w)).save(images / f"{name}.jpg", quality=90)
        Image.fromarray(rng.integers(0, 19, (h, w), dtype=np.uint8)).save(masks / f"{name}.png")
    return {
        "image_dir": str(images),
        "mask_dir": str(masks),
        "image_suffix": ".jpg",
        "names": names,
        "images": len(names),
        "size": [512, 512],
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A dataset index (val and test of odd sizes) and a stats.json."""
    root = tmp_path_factory.mktemp("solution_data")
    rng = np.random.default_rng(7)
    splits = {
        "train": _split(root, "train", [(64, 64)], rng),
        "val": _split(root, "val", VAL_SIZES, rng),
        "test": _split(root, "test", TEST_SIZES, rng),
    }
    (root / "validation.json").write_text(json.dumps({"root": str(root), "layout": "mini", "splits": splits}))
    (root / "stats.json").write_text(json.dumps(STATS))
    return root


def _calibrate(model, data: Path, pre) -> None:
    """Batch-norm statistics of the photos themselves and random scales: then the random network's
    labels vary over a photo (with its initial statistics one class wins almost everywhere)."""
    import torch

    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the calibration passes
            m.weight.data.uniform_(0.5, 2.0)
    mean, std = torch.tensor(pre.mean).view(3, 1, 1), torch.tensor(pre.std).view(3, 1, 1)
    model.train()
    photos = [np.array(Image.open(p).convert("RGB").resize((192, 192))) for p in sorted(data.glob("*/images/*.jpg"))]
    batch = torch.from_numpy(np.stack(photos)).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        model.backbone((batch - mean) / std)  # one batch: pyramid pooling's 1x1 bins need more than one photo
    model.eval()


def _trained(
    data: Path,
    out: Path,
    config: str = "configs/compact.py",
    overrides: dict | None = None,
    test_padding: dict | None = None,
) -> dict[str, Path]:
    """What the train and select steps leave: a dumped config (mean/std from stats.json), a
    checkpoint of random weights (batch norm calibrated on the photos), train.json and best.json."""
    import torch
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import faceparse.mm  # noqa: F401 - registers CompactFaceBackbone, LogitsHead
    from faceparse.mm.config import build_config

    cfg = build_config(
        ROOT / config,
        data / "validation.json",
        data / "stats.json",
        overrides=TINY if overrides is None else overrides,
        work_dir=out / "run",
    )
    if test_padding is not None:
        cfg.model.data_preprocessor.test_cfg = test_padding
    (out / "run").mkdir(parents=True, exist_ok=True)
    config_path = out / "run" / "config.py"
    cfg.dump(str(config_path))
    paths = {
        "config": config_path,
        "checkpoint": out / "run" / "iter_1.pth",
        "train": out / "train.json",
        "best": out / "best.json",
    }
    if cfg.model.backbone.type == "CompactFaceBackbone":
        init_default_scope("mmseg")
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        _calibrate(model, data, cfg.model.data_preprocessor)
        torch.save({"state_dict": model.state_dict(), "meta": {}}, paths["checkpoint"])
    TrainSummary(
        work_dir=str(out / "run"), config=str(config_path), checkpoints=[str(paths["checkpoint"])], max_iters=1
    ).write(paths["train"])
    Selection(checkpoint=str(paths["checkpoint"]), iter=1).write(paths["best"])
    return paths


def _delivered(data: Path, out: Path, **kwargs) -> dict[str, Path]:
    """The pipeline's evaluate (val TTA masks, scores) and predict (test TTA masks) steps on a
    trained model, then its solution folder."""
    from faceparse.predict.solution import build_solution
    from faceparse.predict.steps import evaluate, predict, read_members

    paths = _trained(data, out, **kwargs)
    members = read_members(["compact"], [paths["best"]], [paths["train"]])
    index = data / "validation.json"
    paths.update(
        val_pred=out / "val_pred",
        test_pred=out / "test_pred",
        metrics=out / "val_metrics.json",
        solution=out / "compact_solution",
        parity=out / "compact_solution.parity.json",
    )
    evaluate(
        members,
        index,
        pred_dir=paths["val_pred"],
        metrics_json=paths["metrics"],
        scales=SCALES,
        flip=True,
        batch_size=2,
        threads=1,
    )
    predict(members, index, pred_dir=paths["test_pred"], scales=SCALES, flip=True, batch_size=2, threads=1)
    (out / "framing.json").write_text(json.dumps(FRAMING))
    build_solution(
        "compact",
        paths["best"],
        paths["train"],
        paths["metrics"],
        index,
        paths["val_pred"],
        out_dir=paths["solution"],
        parity_json=paths["parity"],
        scales=SCALES,
        flip=True,
        framing_json=out / "framing.json",
        parity_images=3,
    )
    return paths


@pytest.fixture(scope="module")
def delivered(data, tmp_path_factory) -> dict[str, Path]:
    return _delivered(data, tmp_path_factory.mktemp("solution"))


def _isolated_env(tmp: Path) -> dict[str, str]:
    """An environment whose Python cannot import faceparse, mmseg, mmcv, mmengine, timm or
    onnxruntime (a sitecustomize's import hook refuses them), nor the user's site-packages."""
    block = tmp / "block"
    block.mkdir(exist_ok=True)
    (block / "sitecustomize.py").write_text(
        "import sys\n"
        f"BLOCKED = {BLOCKED!r}\n"
        "class _Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'{name} is not available to run.py')\n"
        "        return None\n"
        "sys.meta_path.insert(0, _Refuse())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return {
        **env,
        "PYTHONPATH": str(block),
        "PYTHONNOUSERSITE": "1",
        "PYTHONSAFEPATH": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def test_run_py_alone_predicts_what_the_pipeline_predicted(delivered, data, tmp_path):
    env = _isolated_env(tmp_path)
    for name in BLOCKED:  # the environment really refuses them
        probe = subprocess.run(
            [sys.executable, "-c", f"import {name}"], env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert probe.returncode != 0 and "is not available to run.py" in probe.stderr, name
    run_py = delivered["solution"] / "run.py"
    same = total = 0
    for image in sorted((data / "test" / "images").glob("*.jpg")):
        out = tmp_path / "masks" / f"{image.stem}.png"
        result = subprocess.run(
            [
                sys.executable,
                str(run_py),
                "--input",
                str(image),
                "--output",
                str(out),
                "--weights",
                str(delivered["solution"] / "ckpt.pth"),
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        with Image.open(out) as im:
            assert im.mode == "L" and im.format == "PNG"
            got = np.asarray(im)
        expected = read_mask(delivered["test_pred"] / f"{image.stem}.png")
        assert got.shape == expected.shape
        same += int((got == expected).sum())
        total += expected.size
    assert len(np.unique(expected)) >= 3, "a prediction of one or two classes would prove little"
    print(f"run.py agrees with the predict step on {100 * same / total:.4f}% of {total} test pixels")
    assert same / total >= 0.999, f"run.py agrees on {100 * same / total:.3f}% of the test pixels"


def test_the_parity_check_would_see_a_wrong_preprocessing(delivered, data):
    """What run.py is compared with tells its settings apart: a wrong mean or no mirrored views
    change the labels of well over 0.1% of the pixels."""
    from faceparse.predict.solution import load_run

    run = load_run(delivered["solution"])
    settings = json.loads((delivered["solution"] / "solution.json").read_text())
    net = run.load_network(delivered["solution"] / "ckpt.pth", settings)
    image = sorted((data / "test" / "images").glob("*.jpg"))[0]
    expected = read_mask(delivered["test_pred"] / f"{image.stem}.png")
    bgr = run.read_image(image)
    assert (run.parse(net, bgr, settings) == expected).mean() >= 0.999
    wrong_mean = json.loads(json.dumps(settings))
    wrong_mean["normalisation"]["mean"] = [m + 20 for m in settings["normalisation"]["mean"]]
    no_flip = json.loads(json.dumps(settings))
    no_flip["tta"]["flip"] = False
    for wrong in (wrong_mean, no_flip):
        assert (run.parse(net, bgr, wrong) == expected).mean() < 0.999


def test_solution_folder_holds_the_plain_network_and_says_what_it_is(delivered):
    import torch

    from faceparse.networks.compact import CompactFaceNet

    folder = delivered["solution"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "Readme.txt",
        "ckpt.pth",
        "compact.py",
        "run.py",
        "solution.json",
    ]
    assert (folder / "compact.py").read_bytes() == (ROOT / "src/faceparse/networks/compact.py").read_bytes()
    assert (folder / "run.py").read_bytes() == (ROOT / "src/faceparse/predict/solution_run.py").read_bytes()
    settings = json.loads((folder / "solution.json").read_text())
    assert settings["network_kwargs"] == {"num_classes": 19, **{k.split(".")[-1]: v for k, v in TINY.items()}}
    assert settings["normalisation"]["mean"] == STATS["mean"] and settings["normalisation"]["std"] == STATS["std"]
    assert settings["resize"] == {"scale": [256, 256], "keep_ratio": True}
    assert settings["tta"]["scales"] == SCALES and settings["tta"]["flip"] is True
    assert settings["test_padding"] is None  # compact.py's size_divisor pads training batches only
    assert settings["framing"] == FRAMING  # the framing step's record travels with the model

    ckpt = torch.load(folder / "ckpt.pth", map_location="cpu", weights_only=True)
    assert list(ckpt) == ["state_dict"]
    net = CompactFaceNet(**settings["network_kwargs"])
    net.load_state_dict(ckpt["state_dict"], strict=True)
    count = sum(p.numel() for p in net.parameters())
    trained = torch.load(delivered["checkpoint"], map_location="cpu", weights_only=True)["state_dict"]
    for key, value in ckpt["state_dict"].items():
        assert torch.equal(value, trained[f"backbone.net.{key}"]), key
    readme = (folder / "Readme.txt").read_text()
    assert settings["parameters"] == count and f"Parameters: {count:,} " in readme
    metrics = json.loads(delivered["metrics"].read_text())
    for key in ("no_tta", "tta"):
        assert f"{metrics[key]['mIoU']:.2f}" in readme and f"{metrics[key]['mF1']:.2f}" in readme
    assert "python run.py --input IMAGE --output MASK.png --weights ckpt.pth" in readme
    for name in ("run.py", "compact.py", "ckpt.pth", "solution.json", "torch", "numpy", "opencv-python", "Pillow"):
        assert name in readme
    parity = json.loads(delivered["parity"].read_text())
    assert parity["passed"] and parity["images"] == len(VAL_SIZES) and parity["agreement_percent"] >= 99.9


def test_masks_archive_holds_the_test_predictions_in_a_masks_folder(delivered, data, tmp_path):
    index = data / "validation.json"
    summary = package(
        delivered["test_pred"], index, tmp_path / "m.masks.zip", tmp_path / "m.masks.check.json", folder="masks"
    )
    stems = sorted(p.stem for p in (data / "test" / "images").glob("*.jpg"))
    assert summary["members"] == "masks/{name}.png" and summary["files"] == len(stems)
    with zipfile.ZipFile(tmp_path / "m.masks.zip") as zf:
        assert sorted(zf.namelist()) == [f"masks/{s}.png" for s in stems]
        for stem in stems:
            with zf.open(f"masks/{stem}.png") as f, Image.open(f) as im:
                assert im.mode == "L" and im.palette is None
                assert np.array_equal(np.asarray(im), read_mask(delivered["test_pred"] / f"{stem}.png"))
    # the Codalab zip of the same masks keeps them at the top level
    package(delivered["test_pred"], index, tmp_path / "m.zip", tmp_path / "m.check.json")
    with zipfile.ZipFile(tmp_path / "m.zip") as zf:
        assert sorted(zf.namelist()) == [f"{s}.png" for s in stems]


def test_run_py_follows_test_time_padding(data, tmp_path):
    """A config whose preprocessor pads at test time (test_cfg.size_divisor): run.py follows mmseg
    there too (the builder's own parity check on the val images must pass)."""
    paths = _delivered(data, tmp_path, test_padding={"size_divisor": 32})
    settings = json.loads((paths["solution"] / "solution.json").read_text())
    assert settings["test_padding"] == {"size": None, "size_divisor": 32, "pad_val": 0.0}
    assert json.loads(paths["parity"].read_text())["agreement_percent"] >= 99.9


def test_only_a_compact_model_has_a_solution_folder(data, tmp_path):
    from faceparse.predict.solution import build_solution

    paths = _trained(data, tmp_path, config="configs/demo_tiny.py", overrides={})
    with pytest.raises(ValueError) as err:
        build_solution(
            "demo_tiny",
            paths["best"],
            paths["train"],
            tmp_path / "m.json",
            data / "validation.json",
            tmp_path / "val_pred",
            out_dir=tmp_path / "demo_tiny_solution",
            parity_json=tmp_path / "p.json",
            scales=SCALES,
            flip=True,
        )
    assert len(str(err.value).splitlines()) == 1
    assert "model demo_tiny: no solution folder: its backbone is" in str(err.value)
    assert not (tmp_path / "demo_tiny_solution").exists() and not (tmp_path / "p.json").exists()


def test_workflow_asks_for_the_deliverables_of_compact_models_only(tmp_path):
    tiny = {"train_cfg.max_iters": 4, "train_cfg.val_interval": 2, "default_hooks.checkpoint.interval": 2}
    config = {
        "models": {
            "demo_tiny": {"config": "configs/demo_tiny.py", "overrides": tiny},
            "compact": {"config": "configs/compact.py", "overrides": tiny},
        }
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(tmp_path, "-n", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for path in ("results/submission/compact_solution", "results/submission/compact.masks.zip"):
        assert path in result.stdout
    assert "demo_tiny_solution" not in result.stdout and "demo_tiny.masks.zip" not in result.stdout
    refused = run_snakemake(tmp_path, "-n", "results/submission/demo_tiny_solution", timeout=300)
    assert refused.returncode != 0
    assert (
        "results/submission/demo_tiny_solution: model demo_tiny is not a CompactFaceNet"
        in refused.stdout + refused.stderr
    )


@pytest.mark.slow
def test_snakemake_delivers_a_compact_models_masks_archive_and_solution(tmp_path, monkeypatch):
    """The real rules on a tiny synthetic set: the archive holds the predict step's masks, and the
    solution folder's run.py (run as a grader runs it) labels a test photo as the predict step did."""
    tiny = {
        "train_cfg.max_iters": 4,
        "train_cfg.val_interval": 2,
        "default_hooks.checkpoint.interval": 2,
        "train_dataloader.batch_size": 2,
        **TINY,
    }
    config = {
        "synthetic": {"seed": 5, "size": 128, "counts": {"train": 6, "val": 3, "test": 2}},
        "tta": {"scales": SCALES, "flip": True},
        "models": {"compact": {"config": "configs/compact.py", "overrides": tiny}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    targets = ("results/submission/compact.masks.zip", "results/submission/compact_solution")
    result = run_snakemake(tmp_path, "--printshellcmds", *targets)  # (a flag ends --resources' values)
    assert result.returncode == 0, result.stderr[-6000:]
    test_pred = tmp_path / "results/models/compact/test_pred"
    stems = sorted(p.stem for p in test_pred.glob("*.png"))
    with zipfile.ZipFile(tmp_path / targets[0]) as zf:
        assert sorted(zf.namelist()) == [f"masks/{s}.png" for s in stems]
        assert all(zf.read(f"masks/{s}.png") == (test_pred / f"{s}.png").read_bytes() for s in stems)
    solution = tmp_path / targets[1]
    assert json.loads((tmp_path / "results/submission/compact_solution.parity.json").read_text())["passed"]
    monkeypatch.chdir(tmp_path)  # the index's paths are the project's
    image = Path(split_files("results/data/validation.json", "test").images[0]).resolve()
    out = tmp_path / "mask.png"
    run = subprocess.run(
        [sys.executable, "run.py", "--input", str(image), "--output", str(out), "--weights", "ckpt.pth"],
        cwd=solution,
        env=_isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (read_mask(out) == read_mask(test_pred / f"{Path(image).stem}.png")).mean() >= 0.999


def test_the_clean_up_is_the_same_in_evaluate_predict_and_run_py(delivered, data, tmp_path):
    """postprocess on: evaluate's and predict's TTA masks are the plain ones cleaned, the solution
    folder carries postprocess.py and run.py, alone, cleans as the pipeline did."""
    from faceparse.predict import postprocess as postprocess_module
    from faceparse.predict.postprocess import postprocess
    from faceparse.predict.solution import build_solution
    from faceparse.predict.steps import evaluate, predict, read_members

    clean = {"min_area": 40, "majority": 3}
    members = read_members(["compact"], [delivered["best"]], [delivered["train"]])
    index = data / "validation.json"
    common = dict(scales=SCALES, flip=True, batch_size=2, threads=1, postprocess=clean)
    metrics = evaluate(members, index, pred_dir=tmp_path / "val_pred", metrics_json=tmp_path / "m.json", **common)
    predict(members, index, pred_dir=tmp_path / "test_pred", **common)
    assert metrics["postprocess"] == clean
    changed = 0
    for split in ("val", "test"):
        for plain in sorted(delivered[f"{split}_pred"].glob("*.png")):
            raw = read_mask(plain)
            cleaned = read_mask(tmp_path / f"{split}_pred" / plain.name)
            assert (cleaned == postprocess(raw, **clean)).all(), plain.name
            changed += int((cleaned != raw).sum())
    assert changed, "a clean-up that changes no pixel of these masks would prove little"
    solution = tmp_path / "solution"
    build_solution(
        "compact",
        delivered["best"],
        delivered["train"],
        tmp_path / "m.json",
        index,
        tmp_path / "val_pred",
        out_dir=solution,
        parity_json=tmp_path / "parity.json",
        scales=SCALES,
        flip=True,
        postprocess=clean,
        parity_images=3,
    )
    settings = json.loads((solution / "solution.json").read_text())
    assert settings["postprocess"] == {"file": "postprocess.py", **clean}
    assert (solution / "postprocess.py").read_bytes() == Path(postprocess_module.__file__).read_bytes()
    image = sorted((data / "test" / "images").glob("*.jpg"))[0]
    out = tmp_path / "run" / f"{image.stem}.png"
    result = subprocess.run(
        [sys.executable, str(solution / "run.py"), "--input", str(image), "--output", str(out)],
        env=_isolated_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = read_mask(tmp_path / "test_pred" / f"{image.stem}.png")
    assert (read_mask(out) == expected).mean() >= 0.999

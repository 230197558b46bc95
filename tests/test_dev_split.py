"""The dev split (config ``dev_split``; on by default when val has no masks): carved out of train
by validate, recorded in the dataset index, never trained on (nor its flipped copy), used to
select the checkpoint; val without masks is predicted and packaged like test."""

from __future__ import annotations

import json
import logging
import random
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from _pipeline import ROOT, run_snakemake
from faceparse.data.devsplit import DEFAULT, DevSplitError, dev_count, dev_names, resolve_dev_split
from faceparse.data.flip import flip_dataset
from faceparse.data.stats import channel_stats
from faceparse.data.validate import DataValidationError, validate_dataset
from faceparse.records import read_index, selection_split, split_files

DEMO = ROOT / "configs" / "demo_tiny.py"


def make_mini(root: Path, counts: dict[str, int] | None = None, val_masks: bool = True) -> Path:
    """A tiny mini-layout set of 16x16 PNGs whose pixels are a fixed function of split and index
    (no encoder or RNG: the same bytes' histograms on every machine)."""
    counts = counts or {"train": 5, "val": 2, "test": 2}
    yy, xx = np.mgrid[:16, :16]
    for split, n in counts.items():
        labelled = split == "train" or (split == "val" and val_masks)
        (root / split / "images").mkdir(parents=True)
        if labelled:
            (root / split / "masks").mkdir(parents=True)
        for i in range(n):
            image = np.stack([(xx * 13 + i * 7) % 256, (yy * 11 + i * 5) % 256, (xx + yy + i) % 256], -1)
            Image.fromarray(image.astype(np.uint8)).save(root / split / "images" / f"{split}{i}.png")
            if labelled:
                mask = ((xx // 4 + yy // 4 + i) % 19).astype(np.uint8)
                Image.fromarray(mask).save(root / split / "masks" / f"{split}{i}.png")
    return root


def data_records(tmp: Path, dev_split: dict | None = None, **mini) -> dict[str, Path]:
    """validation.json, flip.json and stats.json of a tiny set, as the data rules write them."""
    root = make_mini(tmp / "data", **mini)
    paths = {name: tmp / f"{name}.json" for name in ("validation", "flip", "stats")}
    validate_dataset(root, "mini", paths["validation"], dev_split=dev_split)
    flip_dataset(paths["validation"], tmp / "flipped", paths["flip"])
    channel_stats(paths["validation"], paths["stats"])
    return paths


# --------------------------------------------------------------------------- the split itself


def test_dev_names_are_deterministic_and_independent_of_order():
    names = [f"{i:04d}" for i in range(1000)]
    dev = dev_names(names, 0.1, 0)
    assert len(dev) == 100 and set(dev) <= set(names) and dev == sorted(dev)
    shuffled = names[:]
    random.Random(1).shuffle(shuffled)
    assert dev_names(shuffled, 0.1, 0) == dev
    assert dev_names(names, 0.1, 1) != dev  # another seed, other images
    assert dev_names(names, 0.2, 0) != dev
    # not simply the first names in some order: spread over the whole listing
    assert min(dev) < "0100" and max(dev) > "0900"


def test_dev_count_rounds_half_up_keeps_one_and_refuses_an_empty_train():
    assert dev_count(1000, 0.1) == 100
    assert dev_count(15, 0.1) == 2  # 1.5 -> 2 (half up, not Python's half to even)
    assert dev_count(3, 0.1) == 1  # at least one
    assert dev_count(2, 0.5) == 1
    with pytest.raises(DevSplitError, match="leaves none to train on"):
        dev_count(1, 0.1)


def test_resolve_dev_split_defaults_and_refusals():
    assert resolve_dev_split(None, val_has_masks=True) is None
    default = resolve_dev_split(None, val_has_masks=False)
    assert {k: default[k] for k in ("fraction", "seed")} == DEFAULT and "not set" in default["reason"]
    asked = resolve_dev_split({"fraction": 0.2, "seed": 3}, val_has_masks=True)
    assert (asked["fraction"], asked["seed"]) == (0.2, 3)
    for bad in (0, 0.6, -0.1, True, "0.1"):
        with pytest.raises(DevSplitError, match=r"dev_split.fraction: .* is not in \(0, 0.5\]"):
            resolve_dev_split({"fraction": bad, "seed": 0}, val_has_masks=True)
    with pytest.raises(DevSplitError, match="dev_split.seed"):
        resolve_dev_split({"fraction": 0.1, "seed": 1.5}, val_has_masks=True)


# --------------------------------------------------------------------------- the index records it


def test_the_index_records_the_split(tmp_path):
    whole = read_index(data_records(tmp_path / "a")["validation"])
    paths = data_records(tmp_path / "b", dev_split={"fraction": 0.4, "seed": 1})
    index = read_index(paths["validation"])
    train, dev = index["splits"]["train"], index["splits"]["dev"]
    assert dev["names"] == dev_names(whole["splits"]["train"]["names"], 0.4, 1) and len(dev["names"]) == 2
    assert sorted(train["names"] + dev["names"]) == whole["splits"]["train"]["names"]
    assert not set(train["names"]) & set(dev["names"])
    assert dev["image_dir"] == train["image_dir"] and dev["mask_dir"] == train["mask_dir"]
    assert (train["images"], dev["images"]) == (3, 2)
    # each part's histograms are its own images': together they are the whole train split's
    for key in ("pixel_histogram", "class_pixels"):
        assert [a + b for a, b in zip(train[key], dev[key])] == whole["splits"]["train"][key]
    assert {k: index["dev_split"][k] for k in ("fraction", "seed", "from", "images")} == {
        "fraction": 0.4,
        "seed": 1,
        "from": "train",
        "images": 2,
    }
    assert selection_split(index) == "dev" and selection_split(whole) == "val"
    assert whole["dev_split"] is None and "dev" not in whole["splits"]
    # the readers see dev like any split
    assert split_files(paths["validation"], "dev", need_masks=True).names == tuple(dev["names"])


def test_val_without_masks_validates_and_takes_the_default_split(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    index = read_index(data_records(tmp_path, val_masks=False)["validation"])
    val = index["splits"]["val"]
    assert val["mask_dir"] is None and val["images"] == 2 and "class_pixels" not in val
    assert index["dev_split"]["fraction"] == DEFAULT["fraction"] and index["dev_split"]["seed"] == DEFAULT["seed"]
    assert index["splits"]["dev"]["names"] == dev_names([f"train{i}" for i in range(5)], **DEFAULT)
    assert "val: 2 images without masks" in caplog.text
    assert "dev_split is not set: the default" in caplog.text


def test_an_empty_val_masks_folder_is_one_clear_problem(tmp_path):
    root = make_mini(tmp_path / "data", val_masks=False)
    (root / "val" / "masks").mkdir()
    with pytest.raises(DataValidationError) as err:
        validate_dataset(root, "mini", tmp_path / "validation.json")
    assert [p for _, p in err.value.problems] == [
        "an empty masks folder: remove it if val comes without masks, or put the masks in it"
    ]


def test_a_split_leaving_train_empty_is_refused_before_decoding(tmp_path):
    root = make_mini(tmp_path / "data", counts={"train": 1, "val": 1, "test": 1}, val_masks=False)
    (root / "val" / "images" / "val0.png").write_bytes(b"not an image")  # never decoded
    with pytest.raises(DevSplitError, match="takes 1 of the 1 train image"):
        validate_dataset(root, "mini", tmp_path / "validation.json")
    with pytest.raises(DevSplitError, match="fraction"):
        validate_dataset(root, "mini", tmp_path / "validation.json", dev_split={"fraction": 0.9, "seed": 0})
    assert not (tmp_path / "validation.json").exists()


# --------------------------------------------------------------------------- training: never on dev


def _ann_names(dataset) -> list[str]:
    return Path(dataset["ann_file"]).read_text().split()


def test_no_dev_image_nor_its_flip_is_trained_on_and_dev_selects(tmp_path):
    from faceparse.mm.config import build_config

    paths = data_records(tmp_path, dev_split={"fraction": 0.4, "seed": 0})
    dev = read_index(paths["validation"])["splits"]["dev"]["names"]
    flipped = json.loads(paths["flip"].read_text())["names"]
    assert flipped and not set(flipped) & {n + "_flip" for n in dev}  # the flip step leaves dev out
    cfg = build_config(DEMO, paths["validation"], paths["stats"], flip=paths["flip"], work_dir=tmp_path / "w")
    trained = [n for ds in cfg.train_dataloader.dataset.datasets for n in _ann_names(ds)]
    assert len(trained) == 2 * 3 and not set(trained) & (set(dev) | {n + "_flip" for n in dev})
    # the val loop (checkpoint selection) runs on dev
    assert _ann_names(cfg.val_dataloader.dataset) == dev
    # stats are of the images trained on
    assert json.loads(paths["stats"].read_text())["images"] == 3


def test_a_flip_manifest_with_dev_copies_is_refused(tmp_path):
    from faceparse.mm.config import build_config

    stale = data_records(tmp_path / "old")  # flipped every train image, before the dev split
    paths = data_records(tmp_path / "new", dev_split={"fraction": 0.4, "seed": 0})
    with pytest.raises(ValueError, match="flipped copies of dev images .* rerun flip"):
        build_config(DEMO, paths["validation"], paths["stats"], flip=stale["flip"], work_dir=tmp_path / "w")


def test_selection_records_the_split(tmp_path):
    from faceparse.train.select import choose

    ckpt = tmp_path / "iter_2.pth"
    ckpt.write_bytes(b"")
    summary = {"checkpoints": [str(ckpt)], "val": [{"iter": 2, "mIoU": 40.0}], "val_split": "dev"}
    assert choose(summary)["split"] == "dev"
    del summary["val_split"]  # a train.json written before the dev split
    assert choose(summary)["split"] == "val"


# --------------------------------------------------------------------------- the training fingerprint

# training_fingerprint of data_records(tmp) (no dev split, val with masks) and _FIXED_CONFIG,
# as computed by the code before the dev split (commit e87209e): train_on_val False, True.
_OLD_FINGERPRINTS = {
    False: "84354200edd98bae535a0761f334df5961ae1af5c59dd95ccc7b126307421387",
    True: "65354192863aa6222d372ef26f7534a608ff44ac833099c4a6e282db4dd061f4",
}
_FIXED_CONFIG = dict(
    model=dict(type="X", depth=2),
    train_cfg=dict(max_iters=4),
    train_dataloader=dict(batch_size=2, dataset=dict(type="FaceParseDataset")),
)


def _fingerprint(paths: dict[str, Path], train_on_val: bool = False) -> str:
    from mmengine.config import Config

    from faceparse.train.fingerprint import training_fingerprint

    return training_fingerprint(
        Config(_FIXED_CONFIG), paths["validation"], paths["stats"], paths["flip"], train_on_val, 0, 1
    )["sha256"]


def test_a_run_without_dev_split_keeps_its_fingerprint(tmp_path):
    """No retraining of finished runs: dev_split unset and val with masks give the fingerprint the
    code before the dev split gave."""
    paths = data_records(tmp_path)
    assert {tov: _fingerprint(paths, tov) for tov in (False, True)} == _OLD_FINGERPRINTS


def test_the_fingerprint_follows_what_the_dev_split_trains_on(tmp_path):
    base = _fingerprint(data_records(tmp_path / "none"))
    dev = _fingerprint(data_records(tmp_path / "dev", dev_split={"fraction": 0.2, "seed": 0}))
    other_seed = data_records(tmp_path / "seed", dev_split={"fraction": 0.2, "seed": 5})
    assert (
        read_index(other_seed["validation"])["splits"]["dev"]["names"]
        != read_index(tmp_path / "dev" / "validation.json")["splits"]["dev"]["names"]
    )
    assert len({base, dev, _fingerprint(other_seed)}) == 3
    # unrelated: more test images, or val images without masks, keep it
    more_test = data_records(
        tmp_path / "test", dev_split={"fraction": 0.2, "seed": 0}, counts={"train": 5, "val": 2, "test": 4}
    )
    assert _fingerprint(more_test) == dev
    no_val_masks = data_records(tmp_path / "nomask", dev_split={"fraction": 0.2, "seed": 0}, val_masks=False)
    assert _fingerprint(no_val_masks) == dev


# --------------------------------------------------------------------------- val packaged like test


def test_val_predictions_are_packaged_like_test(tmp_path):
    from faceparse.deliver.package import SubmissionError, package

    paths = data_records(tmp_path, val_masks=False)
    preds = tmp_path / "val_pred"
    preds.mkdir()
    for name in ("val0", "val1"):
        Image.fromarray(np.full((16, 16), 3, np.uint8)).save(preds / f"{name}.png")
    package(preds, paths["validation"], tmp_path / "val.zip", tmp_path / "val.check.json", split="val")
    with zipfile.ZipFile(tmp_path / "val.zip") as zf:
        assert sorted(zf.namelist()) == ["val0.png", "val1.png"]
    (preds / "val1.png").unlink()
    with pytest.raises(SubmissionError, match="val1.png: missing"):
        package(preds, paths["validation"], tmp_path / "v2.zip", tmp_path / "v2.check.json", split="val")


# --------------------------------------------------------------------------- the workflow


def _dry_run(work: Path, config: dict) -> tuple[int, str]:
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(work, "-n", "--quiet", "rules", timeout=300)
    return result.returncode, result.stdout + result.stderr


def _mini_config(root: Path, **extra) -> dict:
    return {
        "data_layout": "mini",
        "data_root": str(root),
        "models": {"demo_tiny": {"config": "configs/demo_tiny.py"}},
        "ensembles": {"pair": {"models": ["demo_tiny"]}},
        **extra,
    }


def _planned(text: str) -> set[str]:
    return {line.split()[0] for line in text.splitlines() if line.strip() and line.split()[0].isidentifier()}


def test_the_dag_follows_val_masks_and_dev_split(tmp_path):
    """Val without masks: evaluate scores dev, val is predicted and zipped (models and ensembles);
    val with masks and a dev split: val scored as ever, dev scored beside it; neither: as before."""
    unlabelled = make_mini(tmp_path / "unlabelled", val_masks=False)
    labelled = make_mini(tmp_path / "labelled")
    rc, out = _dry_run(tmp_path / "w1", _mini_config(unlabelled))
    assert rc == 0, out[-3000:]
    assert {"predict_val", "package_val", "ensemble_predict_val", "ensemble_package_val"} <= _planned(out)
    assert "evaluate_dev" not in _planned(out)
    rc, out = _dry_run(tmp_path / "w2", _mini_config(labelled, dev_split={"fraction": 0.2, "seed": 0}))
    assert rc == 0 and "evaluate_dev" in _planned(out) and "predict_val" not in _planned(out), out[-3000:]
    rc, out = _dry_run(tmp_path / "w3", _mini_config(labelled))
    assert rc == 0 and not {"evaluate_dev", "predict_val", "package_val"} & _planned(out), out[-3000:]

    run = run_snakemake(tmp_path / "w1", "-n", "--printshellcmds", timeout=300)
    text = run.stdout + run.stderr
    for path in (
        "results/models/demo_tiny/dev_metrics.json",
        "results/models/demo_tiny/val_pred",
        "results/submission/val/demo_tiny.zip",
        "results/submission/val/pair.zip",
        "results/ensembles/pair/dev_metrics.json",
    ):
        assert path in text, path
    assert "results/models/demo_tiny/val_metrics.json" not in text


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"dev_split": {"fraction": 0.7}}, "config: dev_split.fraction: 0.7 is greater than the maximum of 0.5"),
        ({"dev_split": {"fraction": 0}}, "config: dev_split.fraction: 0 is less than or equal to the minimum of 0"),
        ({"dev_split": {"share": 0.1}}, "config: dev_split: Additional properties are not allowed"),
        ({"train_on_val": True}, "config: train_on_val: val has no masks"),
        ({"counts": {"train": 1, "val": 1, "test": 2}}, "leaves none to train on"),
    ],
)
def test_bad_dev_splits_are_refused_before_any_job(tmp_path, extra, message):
    counts = extra.pop("counts", None)
    root = make_mini(tmp_path / "mini", counts=counts, val_masks=False)
    rc, out = _dry_run(tmp_path / "w", _mini_config(root, **extra))
    assert rc != 0 and message in out, out[-3000:]
    assert not (tmp_path / "w" / "results").exists()


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_mini_without_val_masks_end_to_end(tmp_path):
    """The 2025 edition's release (val images only) through Snakemake: dev selects, dev is scored,
    val is predicted and zipped beside test; no dev image nor its flip is trained on."""
    from faceparse.data.synthetic import generate_dataset

    data = tmp_path / "mini"
    generate_dataset(data, {"train": 10, "val": 3, "test": 2}, size=128, seed=3)
    shutil.rmtree(data / "val" / "masks")
    tiny = yaml.safe_load((ROOT / ".test" / "config.yaml").read_text())
    config = {**tiny, "data_layout": "mini", "data_root": str(data), "dev_split": {"fraction": 0.2, "seed": 7}}
    config.pop("synthetic")
    work = tmp_path / "project"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    model = work / "results" / "models" / "demo_tiny"
    targets = [
        "results/models/demo_tiny/dev_metrics.json",
        "results/models/demo_tiny/colour/done.json",
        "results/submission/val/demo_tiny.zip",
        "results/submission/demo_tiny.zip",
    ]
    run = run_snakemake(work, "--printshellcmds", *targets, timeout=1800)  # (a flag ends --resources' list)
    assert run.returncode == 0, run.stderr[-6000:]

    index = read_index(work / "results" / "data" / "validation.json")
    dev = index["splits"]["dev"]["names"]
    assert dev == dev_names(index["splits"]["train"]["names"] + dev, 0.2, 7) and len(dev) == 2
    train = json.loads((model / "train.json").read_text())
    best = json.loads((model / "best.json").read_text())
    assert train["val_split"] == "dev" and best["split"] == "dev"
    run_dir = Path(model / train["work_dir"]).resolve()
    trained = {n for name in ("train.txt", "train_flip.txt") for n in (run_dir / "splits" / name).read_text().split()}
    assert trained and not trained & (set(dev) | {n + "_flip" for n in dev})
    assert (run_dir / "splits" / "dev.txt").read_text().split() == dev
    metrics = json.loads((model / "dev_metrics.json").read_text())
    assert metrics["split"] == "dev" and metrics["images"] == 2
    with zipfile.ZipFile(work / "results" / "submission" / "val" / "demo_tiny.zip") as zf:
        assert sorted(zf.namelist()) == [f"{n}.png" for n in index["splits"]["val"]["names"]]
    assert "dev split: 2 of the 10 train images" in (work / "logs" / "data" / "validate.log").read_text()

"""validate: the index of a good dataset, and every kind of bad input named in one error."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from faceparse.data.synthetic import generate_dataset
from faceparse.data.validate import DataValidationError, validate_dataset
from faceparse.labels import NUM_CLASSES
from faceparse.report.figures import class_frequency_figure

COUNTS = {"train": 8, "val": 4, "test": 3}


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data"
    generate_dataset(root, COUNTS, size=64, seed=0)
    return root


def test_good_dataset_index_and_plot(dataset, tmp_path):
    out, plot = tmp_path / "validation.json", tmp_path / "class_frequency.png"
    index = validate_dataset(dataset, "synthetic", out, threads=2)
    class_frequency_figure(
        {s: e["class_pixels"] for s, e in index["splits"].items() if "class_pixels" in e}, plot
    )  # the report stage draws what validate counted
    assert json.loads(out.read_text()) == index
    assert index["root"] == str(dataset) and index["layout"] == "synthetic"
    for split, n in COUNTS.items():
        entry = index["splits"][split]
        assert entry["images"] == n and len(entry["names"]) == n and entry["names"] == sorted(entry["names"])
        assert entry["image_suffix"] == ".jpg" and entry["size"] == [64, 64]
        assert entry["image_dir"] == str(dataset / split / "images")
    assert index["splits"]["test"]["mask_dir"] is None  # test: images only, its masks are not read
    masks = [
        np.asarray(Image.open(dataset / "train" / "masks" / f"{n}.png")) for n in index["splits"]["train"]["names"]
    ]
    expected = np.bincount(np.concatenate([m.ravel() for m in masks]), minlength=NUM_CLASSES)
    assert index["splits"]["train"]["class_pixels"] == expected.tolist()
    with Image.open(plot) as im:
        assert im.format == "PNG" and im.width >= 800
    assert plot.stat().st_size < 200_000


def test_given_size_is_enforced(dataset, tmp_path):
    validate_dataset(dataset, "synthetic", tmp_path / "v.json", size=64)
    with pytest.raises(DataValidationError, match=r"size 64x64 \(HxW\), expected 512x512"):
        validate_dataset(dataset, "synthetic", tmp_path / "v.json", size=512)


def _image(path, array, **kw):
    Image.fromarray(array).save(path, **kw)


def test_every_problem_is_named_and_nothing_is_written(dataset, tmp_path):
    tr, va, te = (dataset / s for s in ("train", "val", "test"))
    rgb = np.zeros((64, 64, 3), np.uint8)
    # One problem per file.
    _image(tr / "masks" / "train_00000.png", np.zeros((64, 64, 3), np.uint8))  # RGB colour mask
    _image(tr / "images" / "train_00001.jpg", np.zeros((64, 64), np.uint8))  # grayscale image
    _image(tr / "images" / "train_00002.jpg", np.zeros((48, 64, 3), np.uint8))  # wrong size (+ mask mismatch)
    _image(tr / "masks" / "train_00003.png", np.full((64, 64), 25, np.uint8))  # labels > 18
    (tr / "masks" / "train_00004.png").unlink()  # image without mask
    _image(tr / "masks" / "orphan.png", np.zeros((64, 64), np.uint8))  # mask without image
    _image(tr / "masks" / "train_00005.png", np.zeros((32, 32), np.uint8))  # mask size != image
    _image(tr / "images" / "train_00006.jpg", rgb, format="PNG")  # PNG data named .jpg
    _image(tr / "masks" / "train_00007.png", np.zeros((64, 64), np.uint16))  # 16-bit mask
    _image(va / "images" / "val_00000.jpeg", rgb)  # duplicate stem
    data = (va / "images" / "val_00001.jpg").read_bytes()
    (va / "images" / "val_00001.jpg").write_bytes(data[: len(data) // 2])  # truncated image
    (va / "masks" / "val_00002.png").write_bytes(b"not a png at all")  # unreadable mask
    palette_mask = Image.frombytes("P", (64, 64), np.full((64, 64), 30, np.uint8).tobytes())
    palette_mask.putpalette([v for i in range(256) for v in (i, i, i)])
    palette_mask.save(va / "masks" / "val_00003.png")  # palette index 30
    with open(os.path.join(os.fsencode(te / "images"), b"bad\xffname.jpg"), "wb") as f:  # unreadable name
        f.write((te / "images" / "test_00000.jpg").read_bytes())
    (te / "images" / "notes.txt").write_text("stray")  # not an image
    _image(te / "images" / "extra.png", rgb)  # second suffix in a split

    out = tmp_path / "validation.json"
    with pytest.raises(DataValidationError) as err:
        validate_dataset(dataset, "mini", out, threads=2)
    expected = [
        ("train/masks/train_00000.png", "RGB colour mask, expected single-channel label PNG"),
        ("train/images/train_00001.jpg", "grayscale image (mode L), expected 3-channel RGB"),
        ("train/images/train_00002.jpg", "size 48x64 (HxW), expected 64x64 (HxW)"),
        ("train/masks/train_00002.png", "differs from its image's 48x64"),
        ("train/masks/train_00003.png", "label values outside 0..18 (and 255, ignored): 25"),
        ("train/images/train_00004.jpg", "no mask"),
        ("train/masks/orphan.png", "mask without an image"),
        ("train/masks/train_00005.png", "size 32x32 (HxW) differs from its image's 64x64"),
        ("train/images/train_00006.jpg", "PNG data in a .jpg file"),
        ("train/masks/train_00007.png", "16-bit mask"),
        ("val/images/val_00000", "duplicate stem: val_00000.jpeg, val_00000.jpg"),
        ("val/images/val_00001.jpg", "corrupt JPEG data (Premature end of JPEG file)"),
        ("val/masks/val_00002.png", "unreadable mask"),
        ("val/masks/val_00003.png", "palette indices outside 0..18 (and 255, ignored): 30"),
        ("test/images/bad\\xffname.jpg", "unreadable file name"),
        ("test/images/notes.txt", "unexpected file"),
        ("test/images/extra.png", "suffix .png differs from the split's .jpg"),
    ]
    problems = err.value.problems
    for file, text in expected:
        assert any(f == file and text in p for f, p in problems), (file, text, problems)
        assert file in str(err.value)
    assert len(problems) == len(expected)
    assert not out.exists()


def test_missing_split_folder_is_a_problem(dataset, tmp_path):
    """Train without masks is a problem (val may come without: tests/test_dev_split.py)."""
    for f in (dataset / "train" / "masks").iterdir():
        f.unlink()
    (dataset / "train" / "masks").rmdir()
    with pytest.raises(DataValidationError, match="train/masks: missing folder") as err:
        validate_dataset(dataset, "mini", tmp_path / "v.json")
    assert len(err.value.problems) == 1  # not one "no mask" per image on top

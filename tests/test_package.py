"""Packaging checks the predictions against the test split and refuses wrong submissions."""

import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from faceparse.deliver.package import SubmissionError, check_predictions, package

H, W = 48, 64


@pytest.fixture
def dataset(tmp_path):
    """A test split of 4 images (one of another size) and valid predictions for it."""
    images = tmp_path / "data" / "test" / "images"
    images.mkdir(parents=True)
    names = [f"{i:03d}" for i in range(4)]
    sizes = {n: (H, W) for n in names}
    sizes["003"] = (40, 30)
    for n in names:
        h, w = sizes[n]
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(images / f"{n}.jpg")
    index = tmp_path / "validation.json"
    index.write_text(
        json.dumps(
            {
                "root": str(tmp_path),
                "layout": "mini",
                "splits": {
                    "test": {
                        "image_dir": str(images),
                        "mask_dir": None,
                        "image_suffix": ".jpg",
                        "names": names,
                        "images": len(names),
                        "size": [H, W],
                    }
                },
            }
        )
    )
    preds = tmp_path / "pred"
    preds.mkdir()
    rng = np.random.default_rng(0)
    for n in names:
        h, w = sizes[n]
        Image.fromarray(rng.integers(0, 19, (h, w), dtype=np.uint8), mode="L").save(preds / f"{n}.png")
    return index, preds, names


def test_valid_submission_is_zipped(dataset, tmp_path):
    index, preds, names = dataset
    out = tmp_path / "submission" / "m.zip"
    check = tmp_path / "submission" / "m.check.json"
    summary = package(preds, index, out, check)
    assert summary["ok"] and summary["files"] == 4
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == [f"{n}.png" for n in names]
        for n in names:
            assert zf.read(f"{n}.png") == (preds / f"{n}.png").read_bytes()
    assert json.loads(check.read_text())["sha256"] == summary["sha256"]
    # deterministic: same masks, same bytes
    first = out.read_bytes()
    package(preds, index, out, check)
    assert out.read_bytes() == first
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def _refused(preds, index, tmp_path, *expected):
    out = tmp_path / "sub" / "m.zip"
    with pytest.raises(SubmissionError) as err:
        package(preds, index, out, tmp_path / "sub" / "m.check.json")
    text = "\n".join(err.value.problems)
    for fragment in expected:
        assert fragment in text, text
    assert not out.exists()
    assert not (tmp_path / "sub" / "m.check.json").exists()
    return err.value.problems


def test_missing_file(dataset, tmp_path):
    index, preds, _ = dataset
    (preds / "001.png").unlink()
    _refused(preds, index, tmp_path, "001.png: missing", "3 files, the test split has 4")


def test_hidden_files_ignored(dataset, tmp_path):
    index, preds, _ = dataset
    (preds / ".snakemake_timestamp").write_text("")
    package(preds, index, tmp_path / "m.zip", tmp_path / "m.check.json")
    with zipfile.ZipFile(tmp_path / "m.zip") as zf:
        assert len(zf.namelist()) == 4


def test_extra_file(dataset, tmp_path):
    index, preds, _ = dataset
    Image.fromarray(np.zeros((H, W), np.uint8)).save(preds / "999.png")
    _refused(preds, index, tmp_path, "999.png: not a test image's mask")


def test_wrong_size(dataset, tmp_path):
    index, preds, _ = dataset
    Image.fromarray(np.zeros((H, W), np.uint8)).save(preds / "003.png")  # image is 40x30
    _refused(preds, index, tmp_path, "003.png: size 48x64, the test image is 40x30")


def test_rgb_mode(dataset, tmp_path):
    index, preds, _ = dataset
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(preds / "000.png")
    _refused(preds, index, tmp_path, "000.png: mode RGB, expected L")


def test_values_out_of_range(dataset, tmp_path):
    index, preds, _ = dataset
    mask = np.zeros((H, W), np.uint8)
    mask[0, 0], mask[1, 1] = 19, 255
    Image.fromarray(mask, mode="L").save(preds / "002.png")
    _refused(preds, index, tmp_path, "002.png: values 19, 255 outside 0..18")


def test_every_problem_listed_and_parallel(dataset, tmp_path):
    index, preds, _ = dataset
    (preds / "001.png").unlink()
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(preds / "000.png")
    Image.fromarray(np.full((H, W), 20, np.uint8)).save(preds / "002.png")
    check = check_predictions(preds, index, threads=2)
    assert len([p for p in check["problems"] if p.startswith(("000", "001", "002"))]) == 3


def test_jpeg_named_png_refused(dataset, tmp_path):
    index, preds, _ = dataset
    Image.fromarray(np.zeros((H, W), np.uint8)).save(preds / "000.png", format="JPEG")
    _refused(preds, index, tmp_path, "000.png: format JPEG, expected PNG")

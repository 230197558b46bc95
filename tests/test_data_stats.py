"""stats: exact per-channel mean and std, checked against numpy on the decoded pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from faceparse.data.stats import channel_stats, mean_std_from_histogram
from faceparse.data.synthetic import generate_dataset
from faceparse.data.validate import validate_dataset


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stats")
    generate_dataset(tmp / "data", {"train": 6, "val": 3, "test": 1}, size=80, seed=5)
    index = tmp / "validation.json"
    validate_dataset(tmp / "data", "synthetic", index, threads=2)
    return tmp, index


@pytest.mark.parametrize("splits", [["train"], ["train", "val"]])
def test_matches_numpy(validated, splits):
    tmp, index = validated
    out = tmp / f"stats_{len(splits)}.json"
    result = channel_stats(index, out, splits=splits)
    assert json.loads(out.read_text()) == result
    names = json.loads(index.read_text())["splits"]
    pixels = np.concatenate(
        [
            np.asarray(Image.open(tmp / "data" / s / "images" / f"{n}.jpg")).reshape(-1, 3)
            for s in splits
            for n in names[s]["names"]
        ]
    ).astype(np.float64)
    np.testing.assert_allclose(result["mean"], pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(result["std"], pixels.std(axis=0), rtol=1e-12)
    assert result["images"] == sum(names[s]["images"] for s in splits)
    assert result["pixels"] == len(pixels)


def test_exact_for_huge_counts():
    """10^12 pixels each of 200 and 201: float32/naive sums would drift, integers do not."""
    hist = np.zeros((3, 256), np.int64)
    hist[:, 200] = hist[:, 201] = 10**12
    mean, std, n = mean_std_from_histogram(hist)
    assert mean == [200.5] * 3 and std == [0.5] * 3 and n == 2 * 10**12


def test_png_images_and_an_old_index(tmp_path):
    generate_dataset(tmp_path / "data", {"train": 3, "val": 1, "test": 1}, size=48, seed=6)
    for path in sorted((tmp_path / "data").glob("*/images/*.jpg")):
        with Image.open(path) as im:
            im.save(path.with_suffix(".png"))
        path.unlink()
    index = tmp_path / "validation.json"
    validate_dataset(tmp_path / "data", "mini", index)
    result = channel_stats(index, tmp_path / "stats.json")
    pixels = np.concatenate(
        [
            np.asarray(Image.open(p)).reshape(-1, 3)
            for p in sorted((tmp_path / "data" / "train" / "images").glob("*.png"))
        ]
    )
    np.testing.assert_allclose(result["mean"], pixels.astype(np.float64).mean(axis=0), rtol=1e-12)

    old = json.loads(index.read_text())
    del old["splits"]["train"]["pixel_histogram"]
    index.write_text(json.dumps(old))
    with pytest.raises(ValueError, match="no pixel_histogram.*rerun validate"):
        channel_stats(index, tmp_path / "stats.json")

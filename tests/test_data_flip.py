"""flip: images mirrored without loss (DCT domain), masks mirrored with left/right labels swapped."""

from __future__ import annotations

import json

import jpeglib
import numpy as np
import pytest
from PIL import Image, ImageFilter

from faceparse.data.flip import flip_dataset, flip_image, flip_jpeg, flip_mask
from faceparse.data.synthetic import generate_dataset
from faceparse.data.validate import validate_dataset
from faceparse.labels import SWAP_LUT


def _photo(path, width=64, height=48, **kw):
    rng = np.random.default_rng(width)
    noise = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    noise.filter(ImageFilter.GaussianBlur(1.5)).save(path, **kw)
    return path


def _pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), np.int16)


@pytest.mark.parametrize("subsampling,width", [(2, 64), (0, 72), (1, 80)])
def test_jpeg_flip_is_lossless_and_mirrors(tmp_path, subsampling, width):
    src = _photo(tmp_path / "a.jpg", width, quality=90, subsampling=subsampling)
    assert flip_jpeg(src, tmp_path / "b.jpg") and flip_jpeg(tmp_path / "b.jpg", tmp_path / "c.jpg")
    a, b, c = (jpeglib.read_dct(str(tmp_path / n)) for n in ("a.jpg", "b.jpg", "c.jpg"))
    for comp in ("Y", "Cb", "Cr"):
        np.testing.assert_array_equal(getattr(a, comp), getattr(c, comp))  # twice = the same coefficients
    np.testing.assert_array_equal(a.qt, b.qt)
    np.testing.assert_array_equal(_pixels(tmp_path / "c.jpg"), _pixels(src))  # twice = the original pixels
    mirrored = _pixels(tmp_path / "b.jpg")[:, ::-1]
    assert np.abs(mirrored - _pixels(src)).max() <= 3  # decoder rounding only
    assert np.abs(mirrored - _pixels(src)).mean() < 0.5


def test_jpeg_not_mcu_aligned_falls_back_to_png(tmp_path):
    src = _photo(tmp_path / "a.jpg", 72, quality=90, subsampling=2)  # 4:2:0: MCU 16 px, 72 % 16 != 0
    assert not flip_jpeg(src, tmp_path / "x.jpg") and not (tmp_path / "x.jpg").exists()
    once = flip_image(src, tmp_path / "b")
    assert once.name == "b.png"
    np.testing.assert_array_equal(_pixels(once), _pixels(src)[:, ::-1])
    np.testing.assert_array_equal(_pixels(flip_image(once, tmp_path / "c")), _pixels(src))


def test_mask_flip_swaps_left_and_right(tmp_path):
    mask = np.zeros((8, 12), np.uint8)
    mask[2, 1], mask[2, 10] = 5, 4  # r_eye on the image left, l_eye on the right
    mask[4, 0], mask[4, 11] = 9, 8  # ears
    mask[6, 3], mask[6, 8] = 7, 6  # brows
    mask[7, 5] = 13  # hair: unchanged label
    Image.fromarray(mask).save(tmp_path / "m.png")
    flip_mask(tmp_path / "m.png", tmp_path / "f.png")
    flipped = np.asarray(Image.open(tmp_path / "f.png"))
    np.testing.assert_array_equal(flipped, SWAP_LUT[mask[:, ::-1]])
    assert flipped[2, 1] == 5 and flipped[2, 10] == 4  # mirrored face: still r_eye left, l_eye right
    assert flipped[7, 6] == 13
    flip_mask(tmp_path / "f.png", tmp_path / "g.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "g.png")), mask)


@pytest.fixture
def validated(tmp_path):
    root = tmp_path / "data"
    generate_dataset(root, {"train": 5, "val": 2, "test": 1}, size=64, seed=2)
    index = tmp_path / "validation.json"
    validate_dataset(root, "synthetic", index, threads=1)
    return root, index


def test_flip_dataset_twice_gives_the_originals_back(validated, tmp_path):
    root, index = validated
    info = flip_dataset(index, tmp_path / "flipped", tmp_path / "flip.json", threads=2)
    assert json.loads((tmp_path / "flip.json").read_text()) == info
    assert info["image_suffix"] == ".jpg" and info["lossless_jpeg"] and info["images"] == 5
    assert info["names"] == [f"train_{i:05d}_flip" for i in range(5)]
    # Flip the flipped set: an index pointing at it, as validate would write.
    twice_index = tmp_path / "flipped_index.json"
    twice_index.write_text(
        json.dumps(
            {
                "root": "",
                "layout": "mini",
                "splits": {
                    "train": {
                        "image_dir": info["image_dir"],
                        "mask_dir": info["mask_dir"],
                        "image_suffix": info["image_suffix"],
                        "names": info["names"],
                        "images": info["images"],
                    }
                },
            }
        )
    )
    flip_dataset(twice_index, tmp_path / "twice", tmp_path / "twice.json", threads=1)
    for i in range(5):
        stem = f"train_{i:05d}"
        np.testing.assert_array_equal(
            _pixels(tmp_path / "twice" / "images" / f"{stem}_flip_flip.jpg"),
            _pixels(root / "train" / "images" / f"{stem}.jpg"),
        )
        np.testing.assert_array_equal(
            np.asarray(Image.open(tmp_path / "twice" / "masks" / f"{stem}_flip_flip.png")),
            np.asarray(Image.open(root / "train" / "masks" / f"{stem}.png")),
        )
        flipped_mask = np.asarray(Image.open(tmp_path / "flipped" / "masks" / f"{stem}_flip.png"))
        original = np.asarray(Image.open(root / "train" / "masks" / f"{stem}.png"))
        np.testing.assert_array_equal(flipped_mask, SWAP_LUT[original[:, ::-1]])


def test_flip_with_val_for_train_on_val(validated, tmp_path):
    _, index = validated
    info = flip_dataset(index, tmp_path / "flipped", tmp_path / "flip.json", splits=["train", "val"])
    assert info["images"] == 7 and info["splits"] == ["train", "val"]
    assert len(list((tmp_path / "flipped" / "images").iterdir())) == 7


def test_mixed_jpeg_and_png_flips_become_one_suffix(tmp_path):
    """Width 72: a 4:4:4 JPEG flips losslessly, a 4:2:0 one cannot; the folder gets PNGs only."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    _photo(images / "a.jpg", 72, quality=90, subsampling=0)
    _photo(images / "b.jpg", 72, quality=90, subsampling=2)
    for stem in "ab":
        Image.fromarray(np.zeros((48, 72), np.uint8)).save(masks / f"{stem}.png")
    index = tmp_path / "index.json"
    index.write_text(
        json.dumps(
            {
                "root": "",
                "layout": "mini",
                "splits": {
                    "train": {
                        "image_dir": str(images),
                        "mask_dir": str(masks),
                        "image_suffix": ".jpg",
                        "names": ["a", "b"],
                        "images": 2,
                    }
                },
            }
        )
    )
    info = flip_dataset(index, tmp_path / "flipped", tmp_path / "flip.json")
    assert info["image_suffix"] == ".png" and not info["lossless_jpeg"]
    assert sorted(p.name for p in (tmp_path / "flipped" / "images").iterdir()) == ["a_flip.png", "b_flip.png"]
    for stem in "ab":  # the PNG holds exactly what the decoded flip shows
        flipped = _pixels(tmp_path / "flipped" / "images" / f"{stem}_flip.png")
        assert np.abs(flipped[:, ::-1] - _pixels(images / f"{stem}.jpg")).max() <= 3

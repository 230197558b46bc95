"""Dataset layouts: the challenge (mini) layout, the seed variant, and a miniature CelebAMask-HQ release."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from faceparse.data import celebamask
from faceparse.data.layouts import LayoutError, split_dirs
from faceparse.data.source import make_source
from faceparse.data.validate import validate_dataset
from faceparse.labels import CLASSES


def _pair(image_dir, mask_dir, stem, size=32):
    image_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), 120, np.uint8)).save(image_dir / f"{stem}.jpg")
    if mask_dir is not None:
        mask_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((size, size), 1, np.uint8)).save(mask_dir / f"{stem}.png")


def test_challenge_layout(tmp_path):
    for split in ("train", "val", "test"):
        _pair(tmp_path / split / "images", tmp_path / split / "masks" if split != "test" else None, f"{split}0")
    dirs = split_dirs(tmp_path)
    assert dirs["train"].image_dir == tmp_path / "train" / "images"
    assert dirs["val"].mask_dir == tmp_path / "val" / "masks"
    assert dirs["test"].mask_dir is None
    index = validate_dataset(tmp_path, "mini", tmp_path / "v.json", threads=1)
    assert index["splits"]["test"]["mask_dir"] is None and "class_pixels" not in index["splits"]["test"]
    assert index["splits"]["train"]["names"] == ["train0"]


def test_seed_layout(tmp_path):
    for split in ("train", "val", "test"):
        _pair(tmp_path / "image" / split, tmp_path / "mask" / split if split != "test" else None, f"{split}0")
    dirs = split_dirs(tmp_path)
    assert dirs["train"].image_dir == tmp_path / "image" / "train"
    assert dirs["train"].mask_dir == tmp_path / "mask" / "train"
    index = validate_dataset(tmp_path, "mini", tmp_path / "v.json", threads=1)
    assert index["splits"]["val"]["class_pixels"][1] == 32 * 32


def test_unknown_layout_names_what_was_expected(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(LayoutError, match="train/images"):
        split_dirs(tmp_path)
    with pytest.raises(LayoutError, match="does not exist"):
        split_dirs(tmp_path / "nowhere")


# --- CelebAMask-HQ -------------------------------------------------------------------------

# CelebA-HQ index -> original CelebA index: two per split, one image in annotation folder 1.
ROWS = {0: 5, 1: 162770, 2: 162771, 3: 182637, 4: 182638, 2001: 202000}
SPLIT_OF = {0: "train", 1: "train", 2: "val", 3: "val", 4: "test", 2001: "test"}


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A miniature release: 1024 px images, 512 px random overlapping part masks (some RGB)."""
    root = tmp_path_factory.mktemp("celebamask")
    (root / celebamask.IMAGE_DIR).mkdir()
    lines = ["idx orig_idx orig_file"] + [f"{k} {orig} {orig + 1:06d}.jpg" for k, orig in ROWS.items()]
    (root / celebamask.MAPPING).write_text("\n".join(lines) + "\n")
    rng = np.random.default_rng(0)
    expected = {}
    for k in ROWS:
        gradient = np.linspace(0, 255, 1024, dtype=np.uint8)
        image = np.stack(
            [np.tile(gradient, (1024, 1)), np.tile(gradient[:, None], (1, 1024)), np.full((1024, 1024), 90, np.uint8)],
            axis=-1,
        )
        Image.fromarray(image).save(root / celebamask.IMAGE_DIR / f"{k}.jpg", quality=95)
        painted = np.zeros((512, 512), np.uint8)
        for label, part in enumerate(CLASSES[1:], start=1):
            if rng.uniform() < 0.25:
                continue  # not every part is annotated on every face
            part_mask = np.zeros((512, 512), np.uint8)
            y, x = rng.integers(0, 400, 2)
            part_mask[y : y + rng.integers(20, 200), x : x + rng.integers(20, 200)] = 255
            painted[part_mask > 0] = label
            path = celebamask.part_path(root / celebamask.ANNO_DIR, k, part)
            path.parent.mkdir(parents=True, exist_ok=True)
            out = np.stack([part_mask] * 3, -1) if label % 2 else part_mask  # the release mixes both
            Image.fromarray(out).save(path)
        expected[k] = painted
    return root, expected


def test_official_split_boundaries():
    assert celebamask.split_of(162770) == "train"
    assert celebamask.split_of(162771) == "val"
    assert celebamask.split_of(182637) == "val"
    assert celebamask.split_of(182638) == "test"


def test_celebamask_conversion(release, tmp_path):
    root, expected = release
    out = tmp_path / "source"
    info = make_source("celebamask-hq", out, out / "source.json", threads=2, data_root=str(root))
    assert info["splits"] == {"train": 2, "val": 2, "test": 2}
    assert json.loads((out / "source.json").read_text())["layout"] == "celebamask-hq"
    for k, split in SPLIT_OF.items():
        with Image.open(out / split / "images" / f"{k}.jpg") as im:
            assert im.size == (512, 512) and im.mode == "RGB"
            assert im.layer[0][1:3] == (1, 1)  # 4:4:4, so the flip step can mirror it losslessly
            image = np.asarray(im, np.float32)
        assert abs(image[256, 511, 0] - 255) < 8 and abs(image[511, 256, 1] - 255) < 8
        with Image.open(out / split / "masks" / f"{k}.png") as m:
            assert m.mode == "L"
            np.testing.assert_array_equal(np.asarray(m), expected[k])
    index = validate_dataset(out, "celebamask-hq", tmp_path / "v.json", threads=1, size=512)
    assert index["splits"]["train"]["names"] == ["0", "1"]


def test_celebamask_max_images_and_mask_resize(release, tmp_path):
    root, expected = release
    info = celebamask.convert_celebamask(root, tmp_path, size=256, max_images=1)
    assert info["splits"] == {"train": 1, "val": 1, "test": 1}
    assert info["available"] == {"train": 2, "val": 2, "test": 2}
    with Image.open(tmp_path / "val" / "masks" / "2.png") as m:
        np.testing.assert_array_equal(np.asarray(m), expected[2][1::2, 1::2])  # nearest: centre sampling


def test_celebamask_missing_release_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="CelebA-HQ-to-CelebA-mapping.txt"):
        celebamask.convert_celebamask(tmp_path, tmp_path / "out")

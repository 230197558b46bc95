"""Data as it is released, not as this project generates it: palette masks, ignore pixels, EXIF
rotation, corrupt JPEG data, awkward names and suffixes, changing folders, a broken
CelebAMask-HQ release. Every fixture is built here from tiny files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceparse.data import celebamask
from faceparse.data.fingerprint import listing_fingerprint
from faceparse.data.flip import flip_dataset
from faceparse.data.stats import channel_stats
from faceparse.data.synthetic import generate_dataset
from faceparse.data.validate import DataValidationError, validate_dataset
from faceparse.labels import IGNORE_COLOUR, IGNORE_INDEX, NUM_CLASSES, PALETTE, SWAP_LUT, colour_mask
from faceparse.records import split_files

COUNTS = {"train": 6, "val": 3, "test": 2}
SIZE = 64
# A VOC-style palette: the class colours, then black.
VOC_PALETTE = [v for rgb in PALETTE for v in rgb] + [0] * (768 - 3 * len(PALETTE))


def save_palette_mask(path: Path, labels: np.ndarray) -> None:
    """A palette PNG (mode P) whose pixel indices are the labels, coloured by the class palette."""
    mask = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.astype(np.uint8).tobytes())
    mask.putpalette(VOC_PALETTE)
    mask.save(path)


def read_labels(path: Path) -> np.ndarray:
    with Image.open(path) as m:
        assert m.mode in ("L", "P"), m.mode
        return np.asarray(m)


@pytest.fixture
def palette_root(tmp_path: Path) -> Path:
    """A mini-layout set whose masks are all palette PNGs (as many datasets ship them)."""
    root = tmp_path / "released"
    generate_dataset(root, COUNTS, size=SIZE, seed=1)
    for mask_path in sorted(root.glob("*/masks/*.png")):
        save_palette_mask(mask_path, read_labels(mask_path))
    return root


def test_palette_masks_validate_flip_and_stats(palette_root: Path, tmp_path: Path):
    index_path = tmp_path / "validation.json"
    index = validate_dataset(palette_root, "mini", index_path, threads=2)
    names = index["splits"]["train"]["names"]
    labels = {n: read_labels(palette_root / "train" / "masks" / f"{n}.png") for n in names}
    expected = np.bincount(np.concatenate([m.ravel() for m in labels.values()]), minlength=NUM_CLASSES)
    assert index["splits"]["train"]["class_pixels"] == expected.tolist()  # indices, not colours
    assert index["splits"]["train"]["ignore_pixels"] == 0

    manifest = flip_dataset(index_path, tmp_path / "flipped", tmp_path / "flip.json", threads=2)
    for n in names:
        with Image.open(Path(manifest["mask_dir"]) / f"{n}_flip.png") as flipped:
            assert flipped.mode in ("L", "P")  # never colours
            np.testing.assert_array_equal(np.asarray(flipped), SWAP_LUT[labels[n][:, ::-1]])
    stats = channel_stats(index_path, tmp_path / "stats.json")
    assert stats["images"] == COUNTS["train"]


def test_mmseg_reads_palette_indices(palette_root: Path):
    """mmseg's LoadAnnotations (what training and its validation use) gets the label indices."""
    from mmseg.datasets.transforms import LoadAnnotations

    path = sorted((palette_root / "train" / "masks").glob("*.png"))[0]
    loaded = LoadAnnotations()(dict(seg_map_path=str(path), reduce_zero_label=False, seg_fields=[]))
    np.testing.assert_array_equal(loaded["gt_seg_map"], read_labels(path))
    assert loaded["gt_seg_map"].max() < NUM_CLASSES


def test_ignore_pixels_are_accepted_counted_and_painted_apart(palette_root: Path, tmp_path: Path):
    path = palette_root / "train" / "masks" / "train_00000.png"
    labels = read_labels(path).copy()
    labels[:4] = IGNORE_INDEX  # e.g. an unlabelled border
    save_palette_mask(path, labels)
    index = validate_dataset(palette_root, "mini", tmp_path / "v.json")
    assert index["splits"]["train"]["ignore_pixels"] == 4 * SIZE
    flip_dataset(tmp_path / "v.json", tmp_path / "flipped", tmp_path / "flip.json")
    flipped = read_labels(tmp_path / "flipped" / "masks" / "train_00000_flip.png")
    assert (flipped[:4] == IGNORE_INDEX).all() and (flipped[4:] != IGNORE_INDEX).all()
    assert tuple(colour_mask(labels)[0, 0]) == IGNORE_COLOUR
    assert IGNORE_COLOUR not in PALETTE  # no class looks like "ignored"
    assert tuple(colour_mask(np.array([[NUM_CLASSES - 1]], np.uint8))[0, 0]) == PALETTE[-1]


def _corrupt_scan(path: Path) -> None:
    """Damage a JPEG the way a bad copy does: PIL still decodes it (filling in garbage)."""
    data = bytearray(path.read_bytes())
    cut = len(data) * 2 // 3
    path.write_bytes(bytes(data[:cut]) + b"\xff\xd9")


def _with_orientation(path: Path, orientation: int) -> None:
    with Image.open(path) as im:
        exif = im.getexif()
        exif[0x0112] = orientation
        im.save(path, exif=exif, quality=95)


def test_released_faults_are_named_and_good_files_are_not(palette_root: Path, tmp_path: Path):
    tr, va, te = (palette_root / s for s in ("train", "val", "test"))
    big = np.random.default_rng(0).integers(0, 255, (SIZE, SIZE, 3), np.uint8)  # noisy: a long scan
    Image.fromarray(big).save(tr / "images" / "train_00000.jpg", quality=95)
    _corrupt_scan(tr / "images" / "train_00000.jpg")  # corrupt data
    _with_orientation(tr / "images" / "train_00001.jpg", 6)  # EXIF rotation
    _with_orientation(tr / "images" / "train_00002.jpg", 1)  # upright: fine
    for stem, new in (("train_00003", "train_00003 "), ("train_00004", " train_00004")):
        (tr / "images" / f"{stem}.jpg").rename(tr / "images" / f"{new}.jpg")  # whitespace
        (tr / "masks" / f"{stem}.png").rename(tr / "masks" / f"{new}.png")
    (tr / "masks" / "train_00005.png").rename(tr / "masks" / "train_00005.PNG")  # upper-case mask
    save_palette_mask(va / "masks" / "val_00000.png", np.full((SIZE, SIZE), 40, np.uint8))  # index 40
    (va / "images" / "more").mkdir()  # a sub-folder
    shutil.copy(va / "images" / "val_00001.jpg", va / "images" / "more" / "val_9.jpg")
    os.symlink(tmp_path / "gone.jpg", va / "images" / "val_00009.jpg")  # dangling link
    shutil.copy(va / "masks" / "val_00001.png", va / "masks" / "val_00009.png")
    (te / "images" / "test_00001.jpg").rename(te / "images" / "test\n00001.jpg")  # newline

    out = tmp_path / "validation.json"
    with pytest.raises(DataValidationError) as err:
        validate_dataset(palette_root, "mini", out, threads=2)
    expected = [
        ("train/images/train_00000.jpg", "corrupt JPEG data"),
        ("train/images/train_00001.jpg", "EXIF Orientation is 6"),
        ("train/images/train_00003 .jpg", "starts or ends with whitespace"),
        ("train/masks/train_00003 .png", "starts or ends with whitespace"),
        ("train/images/ train_00004.jpg", "starts or ends with whitespace"),
        ("train/masks/ train_00004.png", "starts or ends with whitespace"),
        ("train/masks/train_00005.PNG", "rename it to .png"),
        ("train/images/train_00005.jpg", "no mask"),
        ("val/masks/val_00000.png", "palette indices outside 0..18 (and 255, ignored): 40"),
        ("val/images/more", "a sub-folder"),
        ("val/images/val_00009.jpg", "unreadable image"),
        ("test/images/test\n00001.jpg", "control characters"),
    ]
    problems = err.value.problems
    for file, text in expected:
        assert any(f == file and text in p for f, p in problems), (file, text, problems)
    assert len(problems) == len(expected), problems
    assert "exif_transpose" in dict(problems)["train/images/train_00001.jpg"]  # says how to fix it
    assert not out.exists()


def test_other_image_suffixes_work_end_to_end(palette_root: Path, tmp_path: Path):
    """.JPG and .jpeg images go through validate, flip, stats and mmseg's dataset."""
    from faceparse.mm.datasets import FaceParseDataset

    for split, suffix in (("train", ".JPG"), ("val", ".jpeg"), ("test", ".PNG")):
        for path in sorted((palette_root / split / "images").iterdir()):
            if suffix == ".PNG":
                with Image.open(path) as im:
                    im.save(path.with_suffix(suffix), format="PNG")
                path.unlink()
            else:
                path.rename(path.with_suffix(suffix))
    index_path = tmp_path / "validation.json"
    index = validate_dataset(palette_root, "mini", index_path)
    assert [index["splits"][s]["image_suffix"] for s in ("train", "val", "test")] == [".JPG", ".jpeg", ".PNG"]
    assert all(Path(p).exists() for s in ("train", "val", "test") for p in split_files(index_path, s).images)
    manifest = flip_dataset(index_path, tmp_path / "flipped", tmp_path / "flip.json")
    assert manifest["lossless_jpeg"] and len(list((tmp_path / "flipped" / "images").glob("*.jpg"))) == COUNTS["train"]
    channel_stats(index_path, tmp_path / "stats.json")
    ann = tmp_path / "train.txt"
    ann.write_text("\n".join(index["splits"]["train"]["names"]) + "\n")
    dataset = FaceParseDataset(
        img_suffix=".JPG",
        ann_file=str(ann),
        pipeline=[],
        data_prefix=dict(
            img_path=str(palette_root / "train" / "images"), seg_map_path=str(palette_root / "train" / "masks")
        ),
    )
    assert len(dataset) == COUNTS["train"] and all(Path(d["img_path"]).exists() for d in dataset.data_list)


def test_dataset_fingerprint_sees_added_replaced_and_removed_files(palette_root: Path, tmp_path: Path):
    before = listing_fingerprint(palette_root)
    assert listing_fingerprint(palette_root) == before
    (palette_root / "README.txt").write_text("not data")  # outside the image/mask folders
    assert listing_fingerprint(palette_root) == before
    mask = palette_root / "train" / "masks" / "train_00000.png"
    save_palette_mask(mask, np.zeros((SIZE, SIZE), np.uint8))  # replaced
    os.utime(mask, ns=(1, 1))  # even with an old mtime: the size changed
    replaced = listing_fingerprint(palette_root)
    assert replaced != before
    shutil.copy(palette_root / "val" / "images" / "val_00000.jpg", palette_root / "val" / "images" / "val_x.jpg")
    added = listing_fingerprint(palette_root)
    assert added != replaced
    (palette_root / "val" / "images" / "val_x.jpg").unlink()
    assert listing_fingerprint(palette_root) == replaced
    # A symlinked split folder is followed: a change behind it is seen.
    outside = tmp_path / "test_images"
    shutil.move(palette_root / "test" / "images", outside)
    os.symlink(outside, palette_root / "test" / "images")
    linked = listing_fingerprint(palette_root)
    assert linked == replaced
    (outside / "test_00000.jpg").unlink()
    assert listing_fingerprint(palette_root) != linked


# --- a broken CelebAMask-HQ release ---------------------------------------------------------


def _release(root: Path) -> Path:
    (root / celebamask.IMAGE_DIR).mkdir(parents=True)
    lines = ["idx orig_idx orig_file"] + [f"{k} {orig} x.jpg" for k, orig in ((0, 5), (1, 170000), (2, 190000))]
    (root / celebamask.MAPPING).write_text("\n".join(lines) + "\n")
    for k in range(3):
        Image.fromarray(np.full((32, 32, 3), 100, np.uint8)).save(root / celebamask.IMAGE_DIR / f"{k}.jpg")
        for part in ("skin", "nose"):
            path = celebamask.part_path(root / celebamask.ANNO_DIR, k, part)
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((32, 32), 255, np.uint8)).save(path)
    return root


def test_celebamask_conversion_names_every_bad_file(tmp_path: Path):
    root = _release(tmp_path / "release")
    anno = root / celebamask.ANNO_DIR
    celebamask.part_path(anno, 0, "nose").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # corrupt part
    celebamask.part_path(anno, 2, "hair").symlink_to(tmp_path / "nowhere.png")  # dangling link
    with pytest.raises(celebamask.ConversionError) as err:
        celebamask.convert_celebamask(root, tmp_path / "out", size=32, threads=2)
    message = str(err.value)
    assert "2 image(s)" in message
    assert f"{celebamask.part_path(anno, 0, 'nose')}: unreadable part mask" in message
    assert f"{celebamask.part_path(anno, 2, 'hair')}: dangling symlink" in message


def test_celebamask_release_fingerprint_changes_with_a_part(tmp_path: Path):
    root = _release(tmp_path / "release")
    before = celebamask.release_fingerprint(root)
    part = celebamask.part_path(root / celebamask.ANNO_DIR, 1, "skin")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(part)
    os.utime(part, ns=(2, 2))
    assert celebamask.release_fingerprint(root) != before


def test_a_palette_mask_dataset_trains(palette_root: Path, tmp_path: Path):
    """The data steps' outputs of a palette-mask set feed a short training run (mmseg reads the
    indices; the flipped masks hold the swapped indices)."""
    from faceparse.train.step import train
    from test_train import FAST, tiny_config

    index = tmp_path / "validation.json"
    validate_dataset(palette_root, "mini", index, threads=2)
    flip_dataset(index, tmp_path / "flipped", tmp_path / "flip.json", threads=2)
    channel_stats(index, tmp_path / "stats.json")
    summary = train(
        tiny_config(tmp_path),
        index,
        tmp_path / "stats.json",
        tmp_path / "train.json",
        tmp_path / "work",
        flip=tmp_path / "flip.json",
        threads=1,
        overrides=FAST,
    )
    assert [Path(c).name for c in summary["checkpoints"]] == ["iter_2.pth", "iter_4.pth"]
    assert all(0.0 <= v["mIoU"] <= 100.0 for v in summary["val"])

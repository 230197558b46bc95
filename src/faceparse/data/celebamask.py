"""Convert the public CelebAMask-HQ release into the mini layout.

Release layout (under ``root``): ``CelebA-HQ-img/{k}.jpg`` (1024x1024),
``CelebAMask-HQ-mask-anno/{k // 2000}/{k:05d}_{part}.png`` (one binary mask per part, part
names = the class names) and ``CelebA-HQ-to-CelebA-mapping.txt`` (columns ``idx orig_idx
orig_file``). The official split goes by the original CelebA index:
train < 162771 <= val < 182638 <= test.

The label map is the parts painted in class order (a later class overwrites an earlier one),
as the release's own g_mask.py does (a part pixel is any non-zero value of the first
channel). Images are resized to ``size`` and written once as high-quality JPEG (4:4:4, so the
flip step can mirror them losslessly); masks are nearest-resized and written as PNG. Test
masks are written too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from faceparse.data.fingerprint import tree_fingerprint
from faceparse.data.png import write_label_png
from faceparse.labels import CLASSES
from faceparse.parallel import parallel_map

IMAGE_DIR = "CelebA-HQ-img"
ANNO_DIR = "CelebAMask-HQ-mask-anno"
MAPPING = "CelebA-HQ-to-CelebA-mapping.txt"
VAL_START, TEST_START = 162771, 182638
JPEG_QUALITY = 95


def release_fingerprint(root: str | Path) -> str:
    """What the conversion reads: the mapping file, the images and the part masks (paths,
    sizes, mtimes; see faceparse.data.fingerprint)."""
    root = Path(root)
    return tree_fingerprint(root, [root / MAPPING, root / IMAGE_DIR, root / ANNO_DIR])


def split_of(orig_idx: int) -> str:
    """Official split of a CelebA image by its original index."""
    if orig_idx < VAL_START:
        return "train"
    return "val" if orig_idx < TEST_START else "test"


def read_mapping(path: str | Path) -> list[tuple[int, int]]:
    """(CelebA-HQ index, original CelebA index) rows of the mapping file."""
    rows = []
    for line_no, line in enumerate(Path(path).read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0] == "idx":
            continue
        try:
            rows.append((int(parts[0]), int(parts[1])))
        except (ValueError, IndexError) as exc:
            raise ValueError(f"{path}:{line_no}: expected 'idx orig_idx orig_file', got {line!r}") from exc
    return rows


def part_path(anno_dir: Path, k: int, part: str) -> Path:
    return anno_dir / str(k // 2000) / f"{k:05d}_{part}.png"


class ConversionError(ValueError):
    """Files of the release could not be converted; the message names each with its problem."""


def merge_parts(anno_dir: str | Path, k: int) -> np.ndarray:
    """The label map of image k: its part masks painted in class order (later wins).

    Raises ConversionError naming the file for a part mask that does not decode, a dangling
    symlink, or an image without any part mask (its folder missing, say)."""
    anno_dir = Path(anno_dir)
    merged = None
    for label, part in enumerate(CLASSES[1:], start=1):
        path = part_path(anno_dir, k, part)
        if not path.exists():
            if path.is_symlink():
                raise ConversionError(f"{path}: dangling symlink (its target does not exist)")
            continue  # parts an image does not have are simply absent
        try:
            with Image.open(path) as im:
                if merged is not None and im.size != (merged.shape[1], merged.shape[0]):
                    im = im.resize((merged.shape[1], merged.shape[0]), Image.NEAREST)
                part_mask = np.asarray(im)
        except Exception as exc:  # noqa: BLE001 - any decoder error names the file
            raise ConversionError(f"{path}: unreadable part mask: {exc}") from exc
        if part_mask.ndim == 3:
            part_mask = part_mask[..., 0]
        if merged is None:
            merged = np.zeros(part_mask.shape, np.uint8)
        merged[part_mask != 0] = label
    if merged is None:
        raise ConversionError(f"{part_path(anno_dir, k, '*')}: no part masks for image {k}")
    return merged


def _convert_one(task: tuple[str, str, int, str, int]) -> str | None:
    """Convert image k; the problem (naming the file) instead of raising, so that one run lists
    every bad file of the release."""
    root, out_dir, k, split, size = task
    root_p, out = Path(root), Path(out_dir) / split
    image_path = root_p / IMAGE_DIR / f"{k}.jpg"
    try:
        with Image.open(image_path) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.LANCZOS)
            im.save(out / "images" / f"{k}.jpg", quality=JPEG_QUALITY, subsampling=0)
    except Exception as exc:  # noqa: BLE001
        return f"{image_path}: unreadable image: {exc}"
    try:
        mask = Image.fromarray(merge_parts(root_p / ANNO_DIR, k))
    except ConversionError as exc:
        return str(exc)
    if mask.size != (size, size):
        mask = mask.resize((size, size), Image.NEAREST)
    write_label_png(out / "masks" / f"{k}.png", np.asarray(mask))
    return None


def convert_celebamask(
    root: str | Path, out_dir: str | Path, size: int = 512, max_images: int | None = None, threads: int = 1
) -> dict:
    """Write the release under root to {out_dir}/{split}/images|masks; returns per-split counts."""
    root, out_dir = Path(root), Path(out_dir)
    mapping = root / MAPPING
    if not mapping.exists():
        raise FileNotFoundError(f"{root}: not a CelebAMask-HQ release (no {MAPPING})")
    by_split: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for k, orig in sorted(read_mapping(mapping)):
        by_split[split_of(orig)].append(k)
    available = {split: len(ks) for split, ks in by_split.items()}
    if max_images:
        by_split = {split: ks[:max_images] for split, ks in by_split.items()}
    missing = [
        str(root / IMAGE_DIR / f"{k}.jpg")
        for ks in by_split.values()
        for k in ks
        if not (root / IMAGE_DIR / f"{k}.jpg").exists()
    ]
    if missing:
        shown = "\n  ".join(missing[:20])
        raise FileNotFoundError(f"{len(missing)} images of the mapping are missing, e.g.:\n  {shown}")
    tasks = []
    for split, ks in by_split.items():
        shutil.rmtree(out_dir / split, ignore_errors=True)
        (out_dir / split / "images").mkdir(parents=True)
        (out_dir / split / "masks").mkdir(parents=True)
        tasks += [(str(root), str(out_dir), k, split, size) for k in ks]
    problems = [p for p in parallel_map(_convert_one, tasks, threads, "celebamask-hq") if p]
    if problems:
        shown = "\n  ".join(problems[:200])
        more = f"\n  ... and {len(problems) - 200} more" if len(problems) > 200 else ""
        raise ConversionError(f"{root}: {len(problems)} image(s) could not be converted:\n  {shown}{more}")
    return {"splits": {split: len(ks) for split, ks in by_split.items()}, "available": available}

"""The files of one split, from the dataset index (results/data/validation.json), and atomic JSON."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SplitFiles", "split_files", "image_size", "write_json"]


@dataclass(frozen=True)
class SplitFiles:
    """Stems, image paths and (train/val) mask paths of a split, in index order."""

    split: str
    names: tuple[str, ...]
    images: tuple[str, ...]
    masks: tuple[str, ...] | None


def _resolve(path: str, base: Path) -> Path:
    """Index paths: absolute, relative to the working directory, else to the index's folder."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return base / p


def split_files(validation_json: str | Path, split: str, need_masks: bool = False) -> SplitFiles:
    validation_json = Path(validation_json)
    index = json.loads(validation_json.read_text())
    if split not in index["splits"]:
        raise KeyError(f"{validation_json}: no split {split!r} (has {sorted(index['splits'])})")
    entry = index["splits"][split]
    base = validation_json.parent
    image_dir = _resolve(entry["image_dir"], base)
    suffix = entry.get("image_suffix", ".jpg")
    names = tuple(entry["names"])
    images = tuple(str(image_dir / f"{n}{suffix}") for n in names)
    masks = None
    if entry.get("mask_dir"):
        mask_dir = _resolve(entry["mask_dir"], base)
        masks = tuple(str(mask_dir / f"{n}.png") for n in names)
    elif need_masks:
        raise ValueError(f"{validation_json}: split {split!r} has no masks to evaluate against")
    return SplitFiles(split, names, images, masks)


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image, from its header."""
    from PIL import Image

    with Image.open(path) as im:
        return im.height, im.width


def write_json(path: str | Path, data) -> None:
    """Write JSON atomically (temp file in the same folder, then os.replace); NaN is refused."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, allow_nan=False)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

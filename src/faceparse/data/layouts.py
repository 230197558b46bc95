"""Where a dataset's images and masks are.

Two folder layouts are read in place:

- the challenge layout ``{root}/{split}/images/*.jpg`` and ``{root}/{split}/masks/*.png``
  (the generated sources in results/data/source use it too);
- the seed solution's variant ``{root}/image/{split}`` and ``{root}/mask/{split}``.

The test split needs images only: its masks, if any, are not read; it may be absent (the test
images are released later: the steps that need them wait). Val may come without masks
(one of the challenge's later editions ships val images only): its masks folder is then absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "val", "test")
LABELLED_SPLITS = ("train", "val")
MASKS_OPTIONAL = ("val",)  # labelled splits whose masks may be withheld (no masks folder)
IMAGES_OPTIONAL = ("test",)  # splits released later: absent until then (no images folder)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MASK_SUFFIX = ".png"


class LayoutError(ValueError):
    """The root is not a dataset in a layout we know."""


@dataclass(frozen=True)
class SplitDirs:
    split: str
    image_dir: Path
    mask_dir: Path | None  # None: images only (test)


def layout_of(root: str | Path) -> str:
    """'challenge' or 'seed', from which folders exist under root."""
    root = Path(root)
    if (root / "train" / "images").is_dir():
        return "challenge"
    if (root / "image" / "train").is_dir():
        return "seed"
    if not root.is_dir():
        raise LayoutError(f"{root}: dataset folder does not exist")
    raise LayoutError(
        f"{root}: not a dataset in the mini layout: expected {root}/train/images and {root}/train/masks "
        f"(likewise val, and test/images), or the seed variant {root}/image/train and {root}/mask/train"
    )


def split_dirs(root: str | Path) -> dict[str, SplitDirs]:
    """The image and mask folder of each split (folders may be missing; validate reports that)."""
    root = Path(root)
    seed = layout_of(root) == "seed"
    dirs = {}
    for split in SPLITS:
        image_dir = root / "image" / split if seed else root / split / "images"
        mask_dir = (root / "mask" / split if seed else root / split / "masks") if split in LABELLED_SPLITS else None
        dirs[split] = SplitDirs(split, image_dir, mask_dir)
    return dirs


def has_images(root: str | Path, split: str) -> bool:
    """Whether ``split`` of the dataset at root has been released (its images folder exists)."""
    return split_dirs(root)[split].image_dir.is_dir()


def has_masks(root: str | Path, split: str) -> bool:
    """Whether ``split`` of the dataset at root ships masks (its masks folder exists)."""
    mask_dir = split_dirs(root)[split].mask_dir
    return mask_dir is not None and mask_dir.is_dir()

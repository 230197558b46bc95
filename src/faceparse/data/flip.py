"""The `flip` step: a mirrored copy of every training image and mask, left/right labels swapped.

Images lose nothing: a JPEG whose width is a multiple of its MCU width is mirrored in the DCT
domain by libjpeg-turbo's lossless transform (TurboJPEG's HFLIP, "perfect"): the 8x8 blocks of
each row are reversed and the coefficients of odd horizontal frequency change sign, and the
result is entropy-coded again with the same quantisation tables, so no second lossy compression
happens and flipping twice gives the original coefficients, hence the original decoded pixels,
back (tests/test_data_flip.py). Any other image (PNG, or a JPEG whose width would put padding
blocks on the wrong side) is decoded, mirrored and written as lossless PNG. Masks (mode L, or
palette PNGs whose indices are the labels) are mirrored and mapped through labels.SWAP_LUT
(4<->5, 6<->7, 8<->9) and written as mode L label PNGs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import turbojpeg
from PIL import Image

from faceparse.data.png import write_label_png
from faceparse.labels import SWAP_LUT
from faceparse.parallel import parallel_map
from faceparse.records import FLIP_SUFFIX, split_files, write_json

log = logging.getLogger(__name__)

SUFFIX = FLIP_SUFFIX


def flip_jpeg(src: str | Path, dst: str | Path) -> bool:
    """Mirror a JPEG losslessly in the DCT domain; False (nothing written) when its width is not a
    multiple of its MCU width (the partial blocks at the right edge would move to the left)."""
    try:
        flipped = turbojpeg.transform(Path(src).read_bytes(), op=turbojpeg.OP.HFLIP, perfect=True)
    except RuntimeError as exc:
        if "not perfect" in str(exc):
            return False
        raise RuntimeError(f"{src}: {exc}") from exc
    Path(dst).write_bytes(flipped)
    return True


def flip_image(src: str | Path, dst_stem: str | Path) -> Path:
    """Mirror an image to dst_stem + '.jpg' (lossless DCT flip) or '.png'; returns the path written."""
    src, dst_stem = Path(src), Path(dst_stem)
    if src.suffix.lower() in (".jpg", ".jpeg"):
        dst = dst_stem.with_name(dst_stem.name + ".jpg")
        if flip_jpeg(src, dst):
            return dst
    dst = dst_stem.with_name(dst_stem.name + ".png")
    with Image.open(src) as im:
        im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(dst)
    return dst


def flip_mask(src: str | Path, dst: str | Path) -> None:
    """Mirror a label mask and swap the left/right classes."""
    with Image.open(src) as m:  # mode L or P: the pixel values are the labels either way
        labels = np.asarray(m)
    write_label_png(dst, np.take(SWAP_LUT, labels[:, ::-1]))


def _flip_pair(task: tuple[str, str, str, str]) -> str:
    image, mask, image_stem, mask_out = task
    flip_mask(mask, mask_out)
    return flip_image(image, image_stem).suffix


def flip_dataset(
    validation_json: str | Path,
    out_dir: str | Path,
    manifest: str | Path,
    threads: int = 1,
    splits: tuple[str, ...] | list[str] = ("train",),
) -> dict:
    """Flip every image and mask of `splits` into out_dir/images|masks and write the manifest."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    tasks, names = [], []
    for split in splits:
        files = split_files(validation_json, split, need_masks=True)
        for stem, image, mask in zip(files.names, files.images, files.masks or ()):
            name = stem + SUFFIX
            tasks.append((image, mask, str(out_dir / "images" / name), str(out_dir / "masks" / f"{name}.png")))
            names.append(name)
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"the same image name in several of {list(splits)}: {dupes[:10]}")
    suffixes = list(parallel_map(_flip_pair, tasks, threads, "flip"))
    suffix = ".png" if ".png" in suffixes else ".jpg"
    if suffix == ".png" and ".jpg" in suffixes:  # one suffix per folder: the JPEGs become PNG too
        log.warning("some images could not be flipped as JPEG; writing all flips as PNG (lossless)")
        for name, written in zip(names, suffixes):
            if written == ".jpg":
                jpg = out_dir / "images" / f"{name}.jpg"
                with Image.open(jpg) as im:
                    im.save(jpg.with_suffix(".png"))
                jpg.unlink()
    result = {
        "image_dir": str(out_dir / "images"),
        "mask_dir": str(out_dir / "masks"),
        "image_suffix": suffix,
        "names": names,
        "images": len(names),
        "splits": list(splits),
        "lossless_jpeg": suffix == ".jpg",
    }
    write_json(manifest, result)
    return result

"""The `validate` step: check every image/mask pair before anything expensive runs, then write
the dataset index (results/data/validation.json) that every later step reads.

Checked, per split:

- names: every file name is UTF-8 and printable, with no leading or trailing whitespace (the
  split lists mmseg reads strip it); images end in .jpg/.jpeg/.png in any case, one suffix per
  split; masks end in .png exactly; no stem appears twice (``a.jpg`` and ``a.jpeg``); no
  sub-folders (they would not be read); every image has a mask and every mask an image (test:
  images only, its masks are not read, and without its images folder (not released yet) it is
  recorded with no images; val: without a masks folder, images only, recorded with
  ``mask_dir: null``);
- images: decode completely (JPEG strictly: libjpeg's "corrupt JPEG data" and "premature end"
  warnings, which fill the damaged part with garbage, are errors), hold what their suffix says,
  are 3-channel RGB, carry no EXIF rotation (OpenCV would apply it, the mask does not), and have
  the expected size (given, or the split's most common size);
- masks: decode, are single-channel 8-bit PNG: mode L, or a palette PNG (mode P) whose indices
  are the labels (the palette only colours them); have their image's size; hold labels 0..18
  and 255 (ignored, see faceparse.labels) only.

All problems are collected and raised together as one DataValidationError; each decode happens
once, in a worker, and also yields the mask's class histogram (for the index; the report draws it) and
the image's RGB value histogram (summed per split as ``pixel_histogram``, which the stats step
turns into exact mean and std without decoding anything again).

The dev split (:mod:`faceparse.data.devsplit`), when there is one, is recorded here: ``splits.train``
holds the train images trained on, ``splits.dev`` the held-out rest (same folders, own histograms),
and ``dev_split`` the settings (``fraction``, ``seed``, ``reason``, ``images``; null without one).
"""

from __future__ import annotations

import io
import logging
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from PIL import ExifTags, Image

from faceparse.data.devsplit import dev_names, resolve_dev_split
from faceparse.data.layouts import (
    IMAGE_SUFFIXES,
    IMAGES_OPTIONAL,
    MASK_SUFFIX,
    MASKS_OPTIONAL,
    SPLITS,
    SplitDirs,
    split_dirs,
)
from faceparse.labels import IGNORE_INDEX, NUM_CLASSES
from faceparse.parallel import parallel_map
from faceparse.records import write_json

log = logging.getLogger(__name__)

Problem = tuple[str, str]  # (file, what is wrong)

_ORIENTATION = ExifTags.Base.Orientation
_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
_IMAGE_MODES = {
    "L": "grayscale image (mode L), expected 3-channel RGB",
    "LA": "grayscale image with alpha (mode LA), expected 3-channel RGB",
    "RGBA": "RGBA image (4 channels), expected 3-channel RGB",
    "P": "palette image (mode P), expected 3-channel RGB",
    "CMYK": "CMYK image, expected 3-channel RGB",
}
_MASK_MODES = {
    "RGB": "RGB colour mask, expected single-channel label PNG (mode L, or P whose indices are the labels)",
    "RGBA": "RGBA colour mask, expected single-channel label PNG (mode L, or P whose indices are the labels)",
    "LA": "mask with alpha (mode LA), expected single-channel label PNG",
    "1": "1-bit mask, expected single-channel 8-bit label PNG",
    "I": "32-bit mask, expected single-channel 8-bit label PNG",
    "I;16": "16-bit mask, expected single-channel 8-bit label PNG",
}


class DataValidationError(ValueError):
    """The dataset has problems; `problems` lists them all as (file, problem)."""

    MAX_SHOWN = 200

    def __init__(self, root: str, problems: list[Problem]):
        self.problems = problems
        lines = [f"  {file}: {problem}" for file, problem in problems[: self.MAX_SHOWN]]
        if len(problems) > self.MAX_SHOWN:
            lines.append(f"  ... and {len(problems) - self.MAX_SHOWN} more (all are in the log)")
        super().__init__(f"dataset {root}: {len(problems)} problem(s):\n" + "\n".join(lines))


@dataclass
class _Split:
    """What listing a split's folders found."""

    image_suffix: str | None
    pairs: dict[str, tuple[Path, Path | None]]  # stem -> (image, mask or None)


def validate_dataset(
    root: str | Path,
    layout: str,
    out_json: str | Path,
    threads: int = 1,
    size: int | tuple[int, int] | None = None,
    dev_split: Mapping | None = None,
) -> dict:
    """Validate the dataset at root (mini layout); write the index or raise.

    ``dev_split`` is the config's (None: not set): with it, or when val has no masks, train is
    cut into ``train`` and ``dev`` (:mod:`faceparse.data.devsplit`) and the index records it.
    A bad fraction, or a split that leaves train empty, raises :class:`faceparse.data.devsplit.DevSplitError` before any
    image is decoded."""
    root = Path(root)
    expected = (size, size) if isinstance(size, int) else (tuple(size) if size else None)
    dirs = split_dirs(root)
    problems: list[Problem] = []
    mask_dirs = {split: _mask_dir(dirs[split], root, problems) for split in SPLITS}
    dev = resolve_dev_split(dev_split, val_has_masks=mask_dirs["val"] is not None)
    splits: dict[str, _Split] = {}
    for split in SPLITS:
        if split in IMAGES_OPTIONAL and not dirs[split].image_dir.exists():
            splits[split] = _Split(None, {})  # not released yet: recorded with no images
            continue
        found, listing_problems = _list_split(root, dirs[split].image_dir, mask_dirs[split])
        splits[split] = found
        problems += listing_problems
    dev_set = set(dev_names(splits["train"].pairs, dev["fraction"], dev["seed"])) if dev else set()

    tasks = [
        (split, stem, str(image), str(mask) if mask else None, str(root))
        for split, found in splits.items()
        for stem, (image, mask) in sorted(found.pairs.items())
    ]
    checks = list(parallel_map(_check_pair, tasks, threads, "validate"))

    index: dict = {"root": str(root), "layout": layout, "splits": {}}
    for split in SPLITS:
        results = {task[1]: check for task, check in zip(tasks, checks) if task[0] == split}
        for check in results.values():
            problems += check.problems
        sizes = Counter(check.size for check in results.values() if check.size)
        split_size = expected or (sizes.most_common(1)[0][0] if sizes else None)
        for task, check in zip(tasks, checks):
            if task[0] == split and check.size and split_size and check.size != split_size:
                problems.append((_rel(task[2], root), f"size {_hw(check.size)}, expected {_hw(split_size)}"))
        parts = {split: sorted(results)}
        if split == "train" and dev:  # train without its dev images, then dev (in train's folders)
            parts = {split: [n for n in parts[split] if n not in dev_set], "dev": sorted(dev_set)}
        for name, names in parts.items():
            index["splits"][name] = _entry(
                dirs[split].image_dir,
                mask_dirs[split],
                splits[split].image_suffix,
                names,
                [results[n] for n in names],
                split_size,
            )
    index["dev_split"] = {**dev, "from": "train", "images": len(dev_set)} if dev else None

    if problems:
        for file, problem in problems:
            log.error("%s: %s", file, problem)
        raise DataValidationError(str(root), problems)
    write_json(out_json, index)
    log.info("validated %s: %s", root, {s: e["images"] for s, e in index["splits"].items()})
    if not index["splits"]["test"]["images"]:
        log.warning(
            "test: no test images yet (%s is absent): the test predictions and zips wait for them",
            dirs["test"].image_dir,
        )
    if mask_dirs["val"] is None:
        log.warning(
            "val: %d images without masks: predicted and packaged like test; the dev split selects the checkpoint",
            index["splits"]["val"]["images"],
        )
    if dev:
        log.warning(
            "dev split: %d of the %d train images held out of training to select the checkpoint "
            "(fraction %s, seed %s; %s)",
            len(dev_set),
            len(splits["train"].pairs),
            dev["fraction"],
            dev["seed"],
            dev["reason"],
        )
    return index


def _mask_dir(dirs: SplitDirs, root: Path, problems: list[Problem]) -> Path | None:
    """A split's mask folder; None for test, and for a split that may come without masks (val)
    and does (no folder; an empty one is reported: it says neither)."""
    mask_dir = dirs.mask_dir
    if mask_dir is None or dirs.split not in MASKS_OPTIONAL:
        return mask_dir
    if not mask_dir.is_dir():
        return None
    if not any(not e.name.startswith(".") for e in os.scandir(mask_dir)):
        problems.append(
            (
                _rel(mask_dir, root),
                f"an empty masks folder: remove it if {dirs.split} comes without masks, or put the masks in it",
            )
        )
        return None
    return mask_dir


def _entry(
    image_dir: Path,
    mask_dir: Path | None,
    image_suffix: str | None,
    names: list[str],
    checks: list[_Check],
    size: tuple[int, int] | None,
) -> dict:
    """The index entry of a split (or part of one): its folders, names, size and summed histograms."""
    entry = {
        "image_dir": str(image_dir),
        "mask_dir": str(mask_dir) if mask_dir else None,
        "image_suffix": image_suffix,
        "names": names,
        "images": len(names),
        "size": list(size) if size else None,
    }
    histograms = [check.histogram for check in checks if check.histogram]
    entry["pixel_histogram"] = [sum(column) for column in zip(*histograms)] if histograms else [0] * 768
    if mask_dir:
        counts = [check.counts for check in checks if check.counts]
        totals = [sum(column) for column in zip(*counts)] if counts else [0] * (NUM_CLASSES + 1)
        entry["class_pixels"] = totals[:NUM_CLASSES]
        entry["ignore_pixels"] = totals[NUM_CLASSES]
    return entry


def _hw(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]} (HxW)"


def _rel(path: str | Path, root: Path) -> str:
    """A file's name for a message: relative to the dataset root, undecodable bytes escaped."""
    try:
        name = str(Path(path).relative_to(root))
    except ValueError:
        name = str(path)
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _name_problem(name: str) -> str | None:
    """Why a file name cannot be carried through the pipeline, or None."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes (surrogate escapes)
        return "unreadable file name (not UTF-8)"
    if not name.isprintable():
        return "file name has control characters (newline, tab, ...): mmseg's split lists cannot hold it"
    stem = Path(name).stem
    if stem != stem.strip():
        return "file name starts or ends with whitespace, which mmseg's split lists strip: rename it"
    return None


def _list_folder(
    folder: Path, suffixes: tuple[str, ...], root: Path, problems: list[Problem], exact_suffix: bool = False
) -> dict[str, Path | None]:
    """stem -> file of a folder's files (None for a duplicate stem, which is reported, not read);
    bad names, unknown suffixes (any case, unless exact_suffix), sub-folders and duplicate stems go
    to problems. Symlinks are followed."""
    if not folder.is_dir():
        problems.append((_rel(folder, root), "missing folder"))
        return {}
    by_stem: dict[str, list[Path]] = {}
    for entry in sorted(os.scandir(folder), key=lambda e: os.fsencode(e.name)):
        name = entry.name
        if name.startswith("."):
            continue  # hidden files (.DS_Store, ._x.jpg) are not data
        path = folder / name
        if entry.is_dir():
            problems.append(
                (
                    _rel(path, root),
                    "a sub-folder: its files would not be read (move them up a "
                    "level, or the folder out of the dataset)",
                )
            )
            continue
        bad_name = _name_problem(name)
        if bad_name:
            problems.append((_rel(path, root), bad_name))
            continue
        suffix = Path(name).suffix
        if suffix.lower() not in suffixes:
            problems.append((_rel(path, root), f"unexpected file (expected {' or '.join(suffixes)})"))
            continue
        if exact_suffix and suffix not in suffixes:
            problems.append((_rel(path, root), f"suffix {suffix}: rename it to {suffix.lower()}"))
            continue
        by_stem.setdefault(Path(name).stem, []).append(path)
    for stem, paths in by_stem.items():
        if len(paths) > 1:
            problems.append((_rel(folder / stem, root), f"duplicate stem: {', '.join(p.name for p in paths)}"))
    return {stem: paths[0] if len(paths) == 1 else None for stem, paths in by_stem.items()}


def _list_split(root: Path, image_dir: Path, mask_dir: Path | None) -> tuple[_Split, list[Problem]]:
    problems: list[Problem] = []
    images = _list_folder(image_dir, IMAGE_SUFFIXES, root, problems)
    suffix = Counter(p.suffix for p in images.values() if p).most_common(1)[0][0] if any(images.values()) else None
    for stem, path in list(images.items()):
        if path and path.suffix != suffix:
            problems.append(
                (
                    _rel(path, root),
                    f"suffix {path.suffix} differs from the split's {suffix} (one image suffix per split)",
                )
            )
            del images[stem]
    if image_dir.is_dir() and not images and not problems:
        problems.append((_rel(image_dir, root), "no images"))
    if mask_dir is None:
        return _Split(suffix, {stem: (path, None) for stem, path in images.items() if path}), problems
    masks = _list_folder(mask_dir, (MASK_SUFFIX,), root, problems, exact_suffix=True)
    for stem in sorted(set(images) - set(masks)):
        if mask_dir.is_dir() and images[stem]:
            problems.append((_rel(images[stem], root), f"no mask ({_rel(mask_dir / (stem + MASK_SUFFIX), root)})"))
    for stem in sorted(set(masks) - set(images)):
        if masks[stem]:
            problems.append((_rel(masks[stem], root), "mask without an image"))
    pairs = {stem: (images[stem], masks[stem]) for stem in images.keys() & masks.keys() if images[stem] and masks[stem]}
    return _Split(suffix, pairs), problems


@dataclass
class _Check:
    size: tuple[int, int] | None  # (H, W) of the image when it decoded
    problems: list[Problem]
    counts: list[int] | None  # pixels per class in the mask, then the ignored (255) pixels
    histogram: list[int] | None  # the RGB image's 3 x 256 value counts (PIL's histogram)


def _check_pair(task: tuple[str, str, str, str | None, str]) -> _Check:
    """Decode an image and its mask once; report what is wrong, the mask's class counts and the
    image's value histogram (which the stats step sums: no second decode)."""
    _, _, image, mask, root_s = task
    root = Path(root_s)
    size, histogram, problems = _check_image(image, _rel(image, root))
    counts = _check_mask(mask, _rel(mask, root), size, problems) if mask is not None else None
    return _Check(size, problems, counts, histogram)


def _check_image(path: str, name: str) -> tuple[tuple[int, int] | None, list[int] | None, list[Problem]]:
    """Size (H, W), RGB histogram and problems of an image, decoded in full: JPEG strictly
    (libjpeg's "corrupt data" warnings are errors), PNG by PIL (zlib and chunk errors)."""
    problems: list[Problem] = []
    histogram = None
    try:
        data = Path(path).read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            size = (im.height, im.width)
            fmt = _FORMATS[Path(path).suffix.lower()]
            if im.format != fmt:
                problems.append((name, f"{im.format} data in a {Path(path).suffix} file"))
            if im.mode != "RGB":
                problems.append((name, _IMAGE_MODES.get(im.mode, f"mode {im.mode}, expected 3-channel RGB")))
            if im.format == "JPEG" and im.mode in ("RGB", "L"):
                histogram = _strict_jpeg_histogram(data, name, problems)
            else:
                im.load()
                histogram = im.histogram() if im.mode == "RGB" else None
            orientation = im.getexif().get(_ORIENTATION, 1)
    except Exception as exc:  # noqa: BLE001 - any decoder error is a problem to report
        return None, None, [*problems, (name, f"unreadable image: {exc}")]
    if orientation != 1:
        problems.append((name, _orientation_problem(orientation)))
    return size, histogram, problems


def _strict_jpeg_histogram(data: bytes, name: str, problems: list[Problem]) -> list[int] | None:
    """Decode a JPEG with libjpeg-turbo (as PIL and OpenCV do), warnings as errors; its RGB
    histogram, or None with the problem added."""
    import simplejpeg

    try:
        pixels = simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)
    except ValueError as exc:  # "Corrupt JPEG data: ...", "Premature end of JPEG file", ...
        problems.append(
            (
                name,
                f"corrupt JPEG data ({exc}); the decoder fills the damaged part with "
                "garbage: replace the file with an intact copy",
            )
        )
        return None
    height, width = pixels.shape[:2]
    return Image.frombuffer("RGB", (width, height), pixels, "raw", "RGB", 0, 1).histogram()


def _orientation_problem(orientation: int) -> str:
    return (
        f"EXIF Orientation is {orientation} (not 1): OpenCV, which loads images for training and "
        "inference, rotates/mirrors the pixels by it while PIL and the mask do not, so image and "
        "mask would disagree. Apply it to the pixels and drop the tag (PIL: "
        "ImageOps.exif_transpose(im).save(...); or `exiftool -Orientation=1 -n FILE` if the "
        "mask matches the pixels as stored), then check the mask lines up"
    )


def _check_mask(path: str, name: str, size: tuple[int, int] | None, problems: list[Problem]) -> list[int] | None:
    """Check a label mask (mode L, or a palette PNG whose indices are the labels); append its
    problems and return its pixels per class plus the ignored pixels, or None."""
    counts = None
    try:
        with Image.open(path) as m:
            m.load()
            if m.format != "PNG":
                problems.append((name, f"{m.format} data in a .png file"))
            if m.mode not in ("L", "P"):
                problems.append((name, _MASK_MODES.get(m.mode, f"mode {m.mode}, expected single-channel label PNG")))
            else:
                hist = m.histogram()  # mode P: counts of the palette indices, which are the labels
                bad = [v for v in range(NUM_CLASSES, 256) if hist[v] and v != IGNORE_INDEX]
                if bad:
                    shown = ", ".join(map(str, bad[:8])) + (", ..." if len(bad) > 8 else "")
                    kind = "palette indices" if m.mode == "P" else "label values"
                    problems.append(
                        (name, f"{kind} outside 0..{NUM_CLASSES - 1} (and {IGNORE_INDEX}, ignored): {shown}")
                    )
                counts = hist[:NUM_CLASSES] + [hist[IGNORE_INDEX]]
            if size and (m.height, m.width) != size:
                problems.append((name, f"size {_hw((m.height, m.width))} differs from its image's {_hw(size)}"))
    except Exception as exc:  # noqa: BLE001
        problems.append((name, f"unreadable mask: {exc}"))
    return counts

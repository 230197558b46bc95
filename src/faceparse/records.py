"""The records the steps pass each other, each with one writer and one reader, and the small
file helpers they share (atomic JSON, sha256 of a file, reading a label mask).

| record | written by | here |
|---|---|---|
| results/data/validation.json (index) | validate | :func:`split_files`, :func:`read_index`, :func:`selection_split` |
| results/data/flip.json (the flipped set) | flip | :func:`flip_files` (same fields as an index split) |
| results/data/stats.json | stats | :func:`read_json` |
| results/models/{m}/train.json | train | :class:`TrainSummary` |
| results/models/{m}/best.json | select | :class:`Selection` |

Paths inside train.json and best.json are written relative to the record's own folder, so a
moved project (or a run directory copied elsewhere) still finds its checkpoints; the readers
return absolute paths. Records written before that hold absolute paths, which still read.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# A training run's TensorBoard event files: {run}/tensorboard (mmengine's TensorboardVisBackend
# during training, the select step's marker of the chosen checkpoint).
TENSORBOARD = "tensorboard"
# The flip step's name of an image's mirrored copy: {name}{FLIP_SUFFIX} (in the flip manifest).
FLIP_SUFFIX = "_flip"

__all__ = [
    "TENSORBOARD",
    "FLIP_SUFFIX",
    "atomic_path",
    "evenly_spaced",
    "resolve_index_path",
    "write_json",
    "read_json",
    "sha256_file",
    "read_mask",
    "read_index",
    "selection_split",
    "SplitFiles",
    "split_files",
    "flip_files",
    "image_size",
    "TrainSummary",
    "Selection",
]


# --------------------------------------------------------------------------- files


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to: on success it replaces ``path`` (mode 644),
    on any error it is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, data) -> None:
    """Write JSON atomically (:func:`atomic_path`); NaN is refused."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(data, f, indent=2, allow_nan=False)
        f.write("\n")


def evenly_spaced(n: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(n)``, first and last included (all when n <= count)."""
    if n <= count:
        return list(range(n))
    return sorted({round(i * (n - 1) / (count - 1)) for i in range(count)}) if count > 1 else [0]


def read_json(path: str | Path) -> dict:
    """A JSON record; a missing or unreadable file is named in the error."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{path}: missing (the step that writes it has not run)") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(functools.partial(f.read, 1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_mask(path: str | Path) -> np.ndarray:
    """A single-channel label mask as (H, W) uint8 (a palette PNG gives its indices, not its colours)."""
    from PIL import Image

    with Image.open(path) as im:
        mask = np.asarray(im)
    if mask.ndim != 2:
        raise ValueError(f"{path}: expected a single-channel label mask, got shape {mask.shape}")
    return mask if mask.dtype == np.uint8 else mask.astype(np.uint8)


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image, from its header."""
    from PIL import Image

    with Image.open(path) as im:
        return im.height, im.width


def _relative(path: str | Path, record: Path) -> str:
    """``path`` relative to the folder of ``record`` (as written into it)."""
    return os.path.relpath(Path(path).resolve(), record.resolve().parent)


def _absolute(path: str, record: Path) -> str:
    """A path read from ``record``: relative ones are taken from the record's folder."""
    p = Path(path)
    return str(p if p.is_absolute() else (record.parent / p).resolve())


# --------------------------------------------------------------------------- dataset index


def read_index(validation_json: str | Path) -> dict:
    """The dataset index validate writes: ``{"root", "layout", "splits": {split: entry}, "dev_split"}``
    (``splits.dev`` and ``dev_split`` set when train was cut into train and dev)."""
    return read_json(validation_json)


def selection_split(index: dict) -> str:
    """The split of an index (:func:`read_index`) that selects the checkpoint: ``dev`` when train
    was cut into train and dev, else ``val``."""
    return "dev" if "dev" in index["splits"] else "val"


@dataclass(frozen=True)
class SplitFiles:
    """Stems, image paths and (train/val) mask paths of a split, in index order."""

    split: str
    names: tuple[str, ...]
    images: tuple[str, ...]
    masks: tuple[str, ...] | None


def resolve_index_path(path: str, record: str | Path) -> Path:
    """A folder named in the dataset index or the flip manifest (``record``): absolute, relative
    to the working directory (the Snakemake workdir) when it is there, else to the record's folder.
    The one resolver of such paths, for training and inference alike."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return Path(record).parent / p


def split_files(validation_json: str | Path, split: str, need_masks: bool = False) -> SplitFiles:
    """The files of one split of the dataset index."""
    validation_json = Path(validation_json)
    index = read_index(validation_json)
    if split not in index["splits"]:
        raise KeyError(f"{validation_json}: no split {split!r} (has {sorted(index['splits'])})")
    return _entry_files(index["splits"][split], validation_json, split, need_masks)


def flip_files(flip_json: str | Path) -> SplitFiles:
    """The flipped images and masks the flip step lists in its manifest (an index split's fields)."""
    return _entry_files(read_json(flip_json), Path(flip_json), "flip", need_masks=True)


def _entry_files(entry: dict, record: Path, split: str, need_masks: bool) -> SplitFiles:
    """The files an index split (or the flip manifest) lists; folders as :func:`resolve_index_path`."""
    image_dir = resolve_index_path(entry["image_dir"], record)
    suffix = entry.get("image_suffix", ".jpg")
    names = tuple(entry["names"])
    images = tuple(str(image_dir / f"{n}{suffix}") for n in names)
    masks = None
    if entry.get("mask_dir"):
        mask_dir = resolve_index_path(entry["mask_dir"], record)
        masks = tuple(str(mask_dir / f"{n}.png") for n in names)
    elif need_masks:
        raise ValueError(f"{record}: split {split!r} has no masks to evaluate against")
    return SplitFiles(split, names, images, masks)


# --------------------------------------------------------------------------- training records


def _from_json(cls, path: Path, kind: str):
    """An instance of the record dataclass ``cls`` from the JSON at path (named when it is not one)."""
    try:
        return cls(**read_json(path))
    except TypeError as exc:
        raise ValueError(f"{path}: not a {kind} record ({exc})") from exc


@dataclass
class TrainSummary:
    """train.json: a model's work dir (its run), its dumped config, the checkpoints that exist and
    load, the val scores per validated iteration (mIoU, and mF1/mF1_19 where logged) and the split
    they were scored on (``val_split``: val, or dev), what the run was trained on, and the model's
    parameter count (as the challenge counts it)."""

    work_dir: str
    config: str
    checkpoints: list[str]
    max_iters: int
    train_on_val: bool = False
    fingerprint: str | None = None
    val: list[dict] = field(default_factory=list)
    parameters: int | None = None
    val_split: str = "val"

    def write(self, path: str | Path) -> None:
        path = Path(path)
        data = dict(vars(self))
        data["work_dir"] = _relative(self.work_dir, path)
        data["config"] = _relative(self.config, path)
        data["checkpoints"] = [_relative(c, path) for c in self.checkpoints]
        write_json(path, data)

    @classmethod
    def read(cls, path: str | Path) -> TrainSummary:
        path = Path(path)
        summary = _from_json(cls, path, "train.json")
        summary.work_dir = _absolute(summary.work_dir, path)
        summary.config = _absolute(summary.config, path)
        summary.checkpoints = [_absolute(c, path) for c in summary.checkpoints]
        return summary


@dataclass
class Selection:
    """best.json: the checkpoint a model is evaluated and submitted with, its iteration, its val
    mIoU, the metric that picked it with its value (None when that iteration was not validated),
    and the split those scores are on (``split``: val, or dev)."""

    checkpoint: str
    iter: int
    mIoU: float | None = None
    metric: str = "mIoU"
    score: float | None = None
    split: str = "val"

    def write(self, path: str | Path) -> None:
        path = Path(path)
        write_json(path, {**vars(self), "checkpoint": _relative(self.checkpoint, path)})

    @classmethod
    def read(cls, path: str | Path) -> Selection:
        path = Path(path)
        selection = _from_json(cls, path, "best.json")
        selection.checkpoint = _absolute(selection.checkpoint, path)
        return selection

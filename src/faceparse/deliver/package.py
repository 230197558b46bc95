"""The Codalab submission: a zip of one 'L' PNG per test image, checked before it is written.

The challenge's format: one single-channel 8-bit PNG per test image, the
same base name as the image, values 0..18, the image's size, zipped at the
archive's top level. The later editions want the same masks in a ``masks/`` folder of the
archive (``folder="masks"``). :func:`check_predictions` compares a prediction folder
with the test split of the dataset index (names and each image's size) and
lists every problem with its file; :func:`package` refuses to write the zip
while there is any, else writes it atomically (:func:`faceparse.records.atomic_path`)
with fixed timestamps and sorted entries (the same masks give the same zip)
and a ``check.json`` summary.
"""

from __future__ import annotations

import logging
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from faceparse.labels import NUM_CLASSES
from faceparse.parallel import parallel_map
from faceparse.records import atomic_path, image_size, sha256_file, split_files, write_json

log = logging.getLogger(__name__)

__all__ = ["SubmissionError", "add_entry", "check_predictions", "package"]

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def add_entry(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    """A deflated member with a fixed date and mode 644: the same files give the same zip."""
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


class SubmissionError(ValueError):
    """The predictions do not make a valid submission; ``problems`` lists them per file."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"submission refused, {len(problems)} problem(s):\n  {shown}{more}")


def _check_one(item: tuple[str, str, str]) -> dict:
    """Problems of one predicted mask against its test image."""
    name, pred_path, image_path = item
    problems = []
    info: dict = {"name": name}
    try:
        expected = image_size(image_path)
    except OSError as exc:
        return {"name": name, "problems": [f"{name}.png: cannot read the test image {image_path}: {exc}"]}
    try:
        with Image.open(pred_path) as im:
            info.update(format=im.format, mode=im.mode, size=[im.height, im.width])
            if im.format != "PNG":
                problems.append(f"{name}.png: format {im.format}, expected PNG")
            if im.mode != "L":
                problems.append(f"{name}.png: mode {im.mode}, expected L (single-channel 8-bit)")
            if (im.height, im.width) != expected:
                problems.append(
                    f"{name}.png: size {im.height}x{im.width}, the test image is {expected[0]}x{expected[1]} (HxW)"
                )
            values = np.asarray(im)
    except OSError as exc:
        return {"name": name, "problems": [f"{name}.png: unreadable: {exc}"]}
    if values.size:
        info["max"] = int(values.max())
        if values.dtype.kind not in "iu":
            problems.append(f"{name}.png: values of type {values.dtype}, expected integers 0..{NUM_CLASSES - 1}")
        elif (bad := np.unique(values[(values < 0) | (values >= NUM_CLASSES)])).size:
            shown = ", ".join(str(int(v)) for v in bad[:10])
            problems.append(f"{name}.png: values {shown} outside 0..{NUM_CLASSES - 1}")
    info["problems"] = problems
    return info


def check_predictions(pred_dir: str | Path, validation_json: str | Path, split: str = "test", threads: int = 1) -> dict:
    """Compare ``pred_dir`` with the split's images; ``{"problems": [...], ...}`` (empty: valid)."""
    files = split_files(validation_json, split)
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        return {"problems": [f"{pred_dir}: no such folder"], "expected": len(files.names), "found": 0}
    # Hidden files (Snakemake's .snakemake_timestamp in a directory output) are not part of it.
    present = {p.name for p in pred_dir.iterdir() if not p.name.startswith(".")}
    expected = {f"{n}.png" for n in files.names}
    problems = [f"{n}.png: missing" for n in files.names if f"{n}.png" not in present]
    problems += [f"{name}: not a test image's mask (extra file)" for name in sorted(present - expected)]
    items = [(n, str(pred_dir / f"{n}.png"), img) for n, img in zip(files.names, files.images) if f"{n}.png" in present]
    infos = list(parallel_map(_check_one, items, threads, desc=f"check {split} masks"))
    for info in infos:
        problems += info["problems"]
    if len(present) != len(expected):
        problems.insert(0, f"{pred_dir}: {len(present)} files, the {split} split has {len(expected)} images")
    return {
        "problems": problems,
        "expected": len(files.names),
        "found": len(present),
        "names": [n for n in files.names if f"{n}.png" in present],
        "modes": dict(Counter(i.get("mode") for i in infos)),
        "sizes": {f"{h}x{w}": c for (h, w), c in Counter(tuple(i["size"]) for i in infos if "size" in i).items()},
        "max_value": max((i.get("max", 0) for i in infos), default=None),
    }


def package(
    pred_dir: str | Path,
    validation_json: str | Path,
    zip_path: str | Path,
    check_json: str | Path,
    split: str = "test",
    threads: int = 1,
    folder: str = "",
) -> dict:
    """Check ``pred_dir`` against the split, then write ``zip_path`` and ``check_json``.

    ``folder``: the archive's folder of the masks (``"masks"``: ``masks/{name}.png``); empty
    (Codalab 2022): at the archive's top level.

    Raises :class:`SubmissionError` (nothing written) when any file is wrong.
    """
    pred_dir, zip_path = Path(pred_dir), Path(zip_path)
    folder = folder.strip("/")
    prefix = f"{folder}/" if folder else ""
    check = check_predictions(pred_dir, validation_json, split, threads)
    if check["problems"]:
        for p in check["problems"]:
            log.error("%s", p)
        raise SubmissionError(check["problems"])
    with atomic_path(zip_path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(check["names"]):
                add_entry(zf, f"{prefix}{name}.png", (pred_dir / f"{name}.png").read_bytes())
        with zipfile.ZipFile(tmp) as zf:
            bad = zf.testzip()
            if bad is not None or len(zf.namelist()) != check["expected"]:
                raise RuntimeError(f"{tmp}: zip verification failed (bad member {bad})")
    summary = {
        "ok": True,
        "split": split,
        "zip": str(zip_path),
        "files": check["expected"],
        "members": f"{prefix}{{name}}.png",
        "zip_bytes": zip_path.stat().st_size,
        "sha256": sha256_file(zip_path),
        "modes": check["modes"],
        "sizes": check["sizes"],
        "max_value": check["max_value"],
        "checked": ["count", "names", "size", "mode L", f"values 0..{NUM_CLASSES - 1}", "PNG format"],
    }
    write_json(check_json, summary)
    log.info("%s: %d masks, %d bytes, sha256 %s", zip_path, summary["files"], summary["zip_bytes"], summary["sha256"])
    return summary

"""Parse your own photos: a label PNG and a colour overlay for every image in a folder.

    faceparse-parse IN_DIR OUT_DIR --model MODEL      (or: python -m faceparse.predict.parse ...)

``MODEL`` is an exported ``.onnx`` file (onnxruntime, no training stack
needed), a run's ``best.json`` (its ``train.json`` beside it names the config)
or a checkpoint with ``--config``. For every image ``IN_DIR/{stem}.{jpg,png,...}``:

- ``OUT_DIR/{stem}.png``          single-channel labels 0..18, the photo's size;
- ``OUT_DIR/{stem}_overlay.jpg``  the photo with the labels' palette blended on top;

and ``OUT_DIR/parse.json``, a summary. With ``--faces`` every face of a photo is found, warped to
the framing the model was trained on, parsed and pasted back (:mod:`faceparse.predict.faces`; the
summary adds each face's box, landmarks, score and transform). Otherwise each photo is resized to the model's
input size (the config's test ``Resize``, as evaluate and predict do), once
per TTA scale and mirrored when flip is on; the class scores are resized back
to the photo, softmaxed, the mirrored ones un-flipped with their left/right
channels swapped (:data:`faceparse.labels.SWAP`), averaged and argmaxed - the
face-aware TTA of :mod:`faceparse.mm.tta`. The resize back is done in row
strips, so no photo-sized array of class scores is ever held (memory stays
near the photo's own size); a single view is argmaxed without a softmax (the
same labels). TTA comes from ``--scales`` / ``--flip``, else from the ONNX
model (the TTA configured when it was exported), else from ``--configfile``
(``config.yaml``).

A JPEG is decoded strictly (truncated or corrupt data is an error, not a
grey-filled photo) and turned by its EXIF orientation as OpenCV does. A file
that cannot be parsed is reported and skipped; the others are still written,
a summary lists the failures and the exit status is 1. A model, config or
output folder that cannot be used is one line on stderr and exit status 2:
the output folder may not be the input folder nor hold a photo, and only
files an earlier parse run wrote there (its ``parse.json`` lists them) are
replaced - each output through a temporary file and ``os.replace``.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image

from faceparse.deliver.colourise import overlay
from faceparse.predict import photo_parser
from faceparse.predict.faces import FaceParser, FacesMode, Framing, LandmarksError, read_landmarks
from faceparse.predict.photo_parser import (
    ImageReadError,
    ModelError,
    Parser,
    PhotoError,
    load_backend,
    one_line,
    read_image,
)
from faceparse.records import write_json

log = logging.getLogger(__name__)

# What parse reads as a photo (a dataset's images are only .jpg/.jpeg/.png: faceparse.data.layouts).
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
SUMMARY = "parse.json"
DETECTOR_SCORE = 0.5  # --detector-score's default: MediaPipe's own

__all__ = ["PHOTO_SUFFIXES", "FolderError", "OutputFolder", "parse_folder", "main"]


class FolderError(ValueError):
    """An output folder this run must not write to (one line, exit status 2)."""


def _names(names: Sequence[str], shown: int = 5) -> str:
    """``a, b, c ... and N more``: a list for a message."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


class OutputFolder:
    """The folder a run writes to: what it held before, which of those files earlier parse runs
    wrote (their ``parse.json`` lists them as ``outputs``), and what this run writes - atomically."""

    def __init__(self, path: Path, earlier: set[str], before: set[str], had_summary: bool):
        self.path = path
        self.earlier = earlier & before  # earlier runs' outputs still in the folder
        self.before = before  # every entry but parse.json before this run
        self.had_summary = had_summary
        self.written: list[str] = []

    @classmethod
    def open(cls, path: Path, in_dir: Path, photos: Sequence[Path]) -> OutputFolder:
        """Check ``path`` for ``photos`` of ``in_dir`` and create it; :class:`FolderError` when it is the
        input folder, holds a photo, or holds a file of an output name that no parse run wrote."""
        out = path.resolve()
        if out == in_dir.resolve():
            raise FolderError(
                f"{path}: the output folder is the input folder ({out}): the labels would "
                "replace photos (face.png) and a later run would parse them; choose another folder"
            )
        inside = [p.name for p in photos if p.resolve().parent == out]
        if inside:
            raise FolderError(
                f"{path}: the output folder holds input photos ({_names(inside)}, through "
                "symlinks): choose another folder"
            )
        before = set(os.listdir(path)) - {SUMMARY} if path.is_dir() else set()
        earlier = _earlier_outputs(path / SUMMARY)
        planned = [name for p in photos for name in (f"{p.stem}.png", f"{p.stem}_overlay.jpg")]
        foreign = sorted({name for name in planned if name in before and name not in (earlier or set())})
        if foreign:
            raise FolderError(
                f"{path}: holds {len(foreign)} file(s) this run would replace that no earlier parse "
                f"run wrote ({_names(foreign)}): move them or choose another folder"
            )
        path.mkdir(parents=True, exist_ok=True)
        folder = cls(path, earlier or set(), before, earlier is not None)
        write_json(
            path / SUMMARY,
            {
                "status": "running",
                "in_dir": str(in_dir),
                "out_dir": str(path),
                "parsed": 0,
                "outputs": sorted(folder.earlier | set(planned)),
            },
        )
        return folder

    def save(self, name: str, write: Callable[[BinaryIO], None]) -> None:
        """Write ``name`` through a temporary file in the folder and ``os.replace``: a reader (or an
        interrupted run) never leaves half a file, and a hard-linked old file is not written through."""
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
            os.replace(tmp, self.path / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.written.append(name)

    def files(self) -> dict:
        """The summary's account of the folder's files (names in it)."""
        written = set(self.written)
        return {
            "outputs": sorted(written | self.earlier),  # what parse runs wrote here: the next run may replace them
            "written": sorted(written),
            "replaced": sorted(written & self.before),
            "earlier_outputs_left": sorted(self.earlier - written),
            "other_files": sorted(self.before - self.earlier - written),
            "earlier_run": self.had_summary,
        }


def _earlier_outputs(summary: Path) -> set[str] | None:
    """The files an earlier run's ``parse.json`` says parse wrote (None: no earlier run; an
    earlier summary without the list - an older faceparse - counts none)."""
    if not summary.exists() and not summary.is_symlink():
        return None
    try:
        record = json.loads(summary.read_text())
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict) or not {"in_dir", "out_dir", "parsed"} <= record.keys():
        raise FolderError(
            f"{summary}: not the summary of an earlier parse run, and this run would replace it: "
            "move it or choose another folder"
        )
    return {str(name) for name in record.get("outputs", [])}


@functools.lru_cache(maxsize=4)
def _overlay_table(alpha: float) -> np.ndarray:
    """(3, 256 labels * 256 values) uint8: what :func:`faceparse.deliver.colourise.overlay` makes of every
    (label, channel value) pair - computed by it, on a photo holding every pair once."""
    values = np.broadcast_to(np.arange(256, dtype=np.uint8)[None, :, None], (256, 256, 3))
    labels = np.broadcast_to(np.arange(256, dtype=np.uint8)[:, None], (256, 256))
    return np.ascontiguousarray(overlay(values, labels, alpha).reshape(-1, 3).T)


def _overlay(bgr: np.ndarray, mask: np.ndarray, alpha: float) -> Image.Image:
    """The RGB photo with the label colours blended on top, as :func:`faceparse.deliver.colourise.overlay`
    blends them, by table lookup in row strips (no float copies of the photo)."""
    table = _overlay_table(float(alpha))
    out = np.empty_like(bgr)
    step = max(1, photo_parser.STRIP_VALUES // bgr.shape[1])
    for y in range(0, len(bgr), step):
        base = mask[y : y + step].astype(np.uint16) << 8
        for c in range(3):
            np.take(table[c], base | bgr[y : y + step, :, 2 - c], out=out[y : y + step, :, c])
    return Image.fromarray(out)


def _parse_photo(
    path: Path, parser: Parser, folder: OutputFolder, alpha: float, faces: FacesMode | None
) -> list[dict] | None:
    """Write the photo's labels and overlay; return its faces' records in faces mode."""
    bgr = read_image(path)
    mask, records = faces.labels(bgr, path.name) if faces is not None else (parser.parse(bgr), None)
    folder.save(f"{path.stem}.png", lambda f: Image.fromarray(mask).save(f, format="PNG"))
    folder.save(f"{path.stem}_overlay.jpg", lambda f: _overlay(bgr, mask, alpha).save(f, format="JPEG", quality=90))
    return records


def parse_folder(
    in_dir: str | Path,
    out_dir: str | Path,
    parser: Parser,
    *,
    alpha: float = 0.5,
    progress: bool = True,
    faces: FacesMode | None = None,
) -> dict:
    """Labels and overlays of every image in ``in_dir`` into ``out_dir``; returns the summary
    (also written to ``out_dir/parse.json``). Files that cannot be parsed are listed under ``errors``;
    an unusable output folder (see :meth:`OutputFolder.open`) raises :class:`FolderError`. With
    ``faces`` (faces mode) the summary adds each photo's faces and lists the photos with none
    (``no_face``: their labels are all background); a landmarks file naming a photo that is not in
    ``in_dir`` raises :class:`faceparse.predict.faces.LandmarksError` before anything is written."""
    from tqdm import tqdm

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise NotADirectoryError(f"{in_dir}: not a folder")
    entries = sorted(in_dir.iterdir())
    images = [p for p in entries if p.suffix.lower() in PHOTO_SUFFIXES and not p.is_dir()]
    skipped = [p.name for p in entries if p not in images]
    if not images:
        raise FileNotFoundError(f"{in_dir}: no images ({', '.join(sorted(PHOTO_SUFFIXES))})")
    if faces is not None:
        unknown = sorted(set(faces.landmarks) - {p.name for p in images})
        if unknown:  # a typo would go unnoticed
            raise LandmarksError(f"the landmarks file names photos that are not in {in_dir}: {_names(unknown)}")
        faces.prepare([p.name for p in images])
    folder = OutputFolder.open(out_dir, in_dir, images)
    if folder.before:
        print(
            f"parse: warning: {out_dir} already holds {len(folder.before)} file(s), {len(folder.earlier)} "
            "written by an earlier parse run (replaced where this run writes the same name), the others "
            "left as they are",
            file=sys.stderr,
        )
    written: dict[str, str] = {}
    errors: dict[str, str] = {}
    found: dict[str, list[dict]] = {}
    start = time.perf_counter()
    for path in tqdm(images, desc="parse", unit="image", disable=not progress):
        try:
            if path.stem in written:
                raise ImageReadError(f"{path}: same output name {path.stem}.png as {written[path.stem]}")
            records = _parse_photo(path, parser, folder, alpha, faces)
            written[path.stem] = path.name
            if records is not None:
                found[path.name] = records
        except (PhotoError, OSError, cv2.error) as err:  # cv2.error: OpenCV on an exotic file
            errors[path.name] = str(err) if isinstance(err, ImageReadError) else f"{path}: {err}"
            tqdm.write(f"error: {errors[path.name]}", file=sys.stderr)
    summary = {
        "status": "done",
        "in_dir": str(in_dir),
        "out_dir": str(out_dir),
        "images": len(images),
        "parsed": len(written),
        "failed": len(errors),
        "errors": errors,
        "skipped_not_images": skipped,
        "tta": {"scales": parser.scales, "flip": parser.flip},
        "model": getattr(parser.backend, "description", type(parser.backend).__name__),
        "normalisation": getattr(parser.backend, "normalisation", None),
        "seconds": time.perf_counter() - start,
        **folder.files(),
    }
    if faces is not None:
        summary["mode"] = "faces"
        summary["faces"] = found
        summary["no_face"] = sorted(name for name, records in found.items() if not any(r["parsed"] for r in records))
        summary.update(faces.describe())
    else:
        summary["mode"] = "photo"
    write_json(out_dir / SUMMARY, summary)
    return summary


def _configured_tta(configfile: Path) -> dict | None:
    if not configfile.is_file():
        return None
    import yaml

    return (yaml.safe_load(configfile.read_text()) or {}).get("tta")


def _arguments() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="faceparse-parse",
        description=__doc__.split("\n\n")[0],
        epilog="exit status: 0 every photo parsed; 1 some photos could not be parsed, or had no face "
        "(--faces); 2 the model, a file given or the output folder cannot be used. "
        "Docs: docs/export-parse.md",
    )
    ap.add_argument("in_dir", type=Path, help="folder of photos (.jpg, .png, ...)")
    ap.add_argument(
        "out_dir", type=Path, help="where {stem}.png labels and {stem}_overlay.jpg go (not the input folder)"
    )
    ap.add_argument(
        "--model",
        required=True,
        type=Path,
        help="an exported .onnx, a run's best.json, or a checkpoint (with --config)",
    )
    ap.add_argument("--config", type=Path, help="the mmseg config of a checkpoint given as --model")
    ap.add_argument(
        "--stats",
        type=Path,
        help="a checkpoint's stats.json (mean/std), when neither its meta nor a config.py "
        "beside it holds its run's config",
    )
    ap.add_argument("--scales", type=float, nargs="+", help="TTA scales (default: the model's or config's)")
    ap.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="face-aware flip TTA (default: the model's or config's)",
    )
    ap.add_argument(
        "--configfile",
        type=Path,
        default=Path("config.yaml"),
        help="pipeline config whose `tta` is the default for checkpoints (default: config.yaml)",
    )
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for the model (default: 2)")
    ap.add_argument("--device", default="cpu", help="PyTorch device for a checkpoint, e.g. cuda:0 (default: cpu)")
    ap.add_argument("--alpha", type=float, default=0.5, help="overlay opacity (default: 0.5)")
    ap.add_argument("--faces", action="store_true", help="find each face, align, parse, paste back (docs)")
    ap.add_argument("--landmarks", type=Path, help="JSON of faces' landmarks per photo name (implies --faces)")
    ap.add_argument("--largest-face", action="store_true", help="faces mode: only each photo's largest face")
    ap.add_argument(
        "--min-face", type=float, default=0.0, metavar="PX", help="faces mode: skip faces whose square is smaller"
    )
    ap.add_argument(
        "--detector-score",
        type=float,
        default=DETECTOR_SCORE,
        metavar="S",
        help=f"faces mode: the detector's least score (default: {DETECTOR_SCORE:g})",
    )
    ap.add_argument("--framing", type=Path, help="faces mode: a framing.json for a model without one")
    return ap


def _faces_mode(args: argparse.Namespace, backend, parser: Parser, model: Path) -> FacesMode | None:
    """Faces mode as the arguments ask (None: whole photos); :class:`ModelError` or
    :class:`LandmarksError` (exit status 2) when its framing or landmarks cannot be had."""
    if not (args.faces or args.landmarks):
        given = {
            "--largest-face": args.largest_face,
            "--framing": args.framing is not None,
            "--min-face": args.min_face != 0,
            "--detector-score": args.detector_score != DETECTOR_SCORE,
        }
        for flag in (flag for flag, on in given.items() if on):
            raise ModelError(f"{flag} is for faces mode: add --faces")
        return None
    if not 0 <= args.detector_score <= 1 or args.min_face < 0:
        raise ModelError(
            f"--detector-score must be within 0..1 (got {args.detector_score:g}) and --min-face at "
            f"least 0 (got {args.min_face:g})"
        )
    if args.framing is not None:
        framing = Framing.read(args.framing)
    elif backend.framing is not None:
        framing = Framing.from_record(backend.framing, f"{model} (its framing)")
    elif model.suffix.lower() == ".json" and (beside := model.resolve().parents[2] / "data" / "framing.json").is_file():
        framing = Framing.read(beside)  # a run's best.json: results/models/{m}/best.json -> results/data
    else:
        raise ModelError(
            f"{model}: no training framing to align faces to (an .onnx exported by faceparse 0.3 "
            "or later holds it): pass --framing results/data/framing.json (the framing step's)"
        )
    landmarks = read_landmarks(args.landmarks) if args.landmarks else None
    face_parser = FaceParser(parser, framing, min_size=args.min_face, largest=args.largest_face)
    return FacesMode(face_parser, landmarks, args.detector_score)


def _report(summary: dict) -> None:
    """The end of a run on stderr: counts, the folder's other files, the failures."""
    out = summary["out_dir"]
    print(
        f"parse: {summary['parsed']} of {summary['images']} images written to {out} in {summary['seconds']:.1f} s",
        file=sys.stderr,
    )
    for key, what in (
        ("replaced", "replaced, written by an earlier run"),
        ("earlier_outputs_left", "left from an earlier run (this run did not write them)"),
        ("other_files", "not written by parse, left as they are"),
    ):
        if summary[key]:
            print(f"parse: {len(summary[key])} file(s) in {out} {what}: {_names(summary[key])}", file=sys.stderr)
    if summary["skipped_not_images"]:
        print(f"parse: skipped (not images): {', '.join(summary['skipped_not_images'])}", file=sys.stderr)
    if summary.get("mode") == "faces":
        counts = [sum(r["parsed"] for r in records) for records in summary["faces"].values()]
        print(f"parse: {sum(counts)} face(s) parsed in {len(counts)} photo(s)", file=sys.stderr)
        if summary["no_face"]:
            print(
                f"parse: no face found in {len(summary['no_face'])} photo(s) (labelled all background; "
                f"give their landmarks with --landmarks): {_names(summary['no_face'])}",
                file=sys.stderr,
            )
    if summary["errors"]:
        print(f"parse: {summary['failed']} failed:", file=sys.stderr)
        for name, message in summary["errors"].items():
            print(f"  {name}: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        backend = load_backend(args.model, args.config, args.device, args.threads, args.stats)
    except (OSError, ValueError) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    tta = backend.tta or _configured_tta(args.configfile) or {"scales": [1.0], "flip": False}
    scales = args.scales or tta["scales"]
    flip = tta["flip"] if args.flip is None else args.flip
    print(f"parse: {backend.description}; TTA scales {scales}, flip {flip}", file=sys.stderr)
    print(f"parse: normalisation {backend.normalisation}", file=sys.stderr)
    parser = Parser(backend, scales, flip)
    faces = None
    try:
        faces = _faces_mode(args, backend, parser, args.model)
        summary = parse_folder(args.in_dir, args.out_dir, parser, alpha=args.alpha, faces=faces)
    except (OSError, FolderError, ModelError, LandmarksError) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    finally:
        if faces is not None:
            faces.close()
    _report(summary)
    return 1 if summary["errors"] or summary.get("no_face") else 0


if __name__ == "__main__":
    sys.exit(main())

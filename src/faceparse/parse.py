"""Parse your own photos: a label PNG and a colour overlay for every image in a folder.

    python -m faceparse.parse IN_DIR OUT_DIR --model MODEL

``MODEL`` is an exported ``.onnx`` file (onnxruntime, no training stack
needed), a run's ``best.json`` (its ``train.json`` beside it names the config)
or a checkpoint with ``--config``. For every image ``IN_DIR/{stem}.{jpg,png,...}``:

- ``OUT_DIR/{stem}.png``          single-channel labels 0..18, the photo's size;
- ``OUT_DIR/{stem}_overlay.jpg``  the photo with the labels' palette blended on top;

and ``OUT_DIR/parse.json``, a summary. Each photo is resized to the model's
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
import ast
import functools
import io
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image

from faceparse.deliver.colourise import overlay
from faceparse.labels import NUM_CLASSES, SWAP
from faceparse.records import write_json

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
SUMMARY = "parse.json"
# Class scores per row strip (float32: 4 MB): the resize back to the photo, softmax and argmax work
# strip by strip, so memory does not grow with 19 x the photo's pixels.
STRIP_VALUES = 1 << 20

__all__ = ["PhotoError", "ImageReadError", "ModelError", "FolderError", "read_image", "METADATA_KEY", "ort_session",
           "OnnxBackend", "Normalisation", "TorchBackend", "load_backend", "run_normalisation", "Parser",
           "OutputFolder", "parse_folder", "main"]


class PhotoError(ValueError):
    """A photo that cannot be parsed: reported for that file, the others are still parsed."""


class ImageReadError(PhotoError):
    """A file that is not a readable image (the message names the file)."""


class ModelError(ValueError):
    """A model, its config or its statistics that cannot be used (one line, exit status 2)."""


class FolderError(ValueError):
    """An output folder this run must not write to (one line, exit status 2)."""


def _one_line(err: BaseException) -> str:
    """The first line of an exception's message (a library's multi-line report shortened)."""
    lines = str(err).strip().splitlines()
    return (lines[0] if lines else type(err).__name__)[:300]


# ---------------------------------------------------------------------------
# Photos

JPEG_MAGIC = b"\xff\xd8\xff"
_ORIENTATION_TAG = 0x0112
# OpenCV's ExifTransform (imgcodecs/src/loadsave.cpp): per EXIF Orientation, transpose first, then
# cv2.flip with this code (None: no flip).
_EXIF_TRANSFORMS: dict[int, tuple[bool, int | None]] = {
    2: (False, 1), 3: (False, -1), 4: (False, 0), 5: (True, None), 6: (True, 1), 7: (True, -1), 8: (True, 0),
}


def read_image(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 BGR, as mmseg's ``LoadImageFromFile`` decodes it (OpenCV, EXIF orientation
    applied as ``cv2.imread`` does), except that a JPEG is decoded strictly: libjpeg-turbo's warnings
    ("Premature end of JPEG file", "Corrupt JPEG data") are errors, not a grey-filled photo."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise ImageReadError(f"{path}: a dangling symlink (its target {os.readlink(path)} does not exist)")
    data = path.read_bytes()
    if data.startswith(JPEG_MAGIC):
        return _read_jpeg(path, data)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is not None:
        return image
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
        reason = f"OpenCV cannot decode this {im.format} file"
    except Exception as err:  # noqa: BLE001 - PIL's exception is only used for its message
        reason = str(err) or type(err).__name__
    raise ImageReadError(f"{path}: not a readable image ({reason})")


def _read_jpeg(path: Path, data: bytes) -> np.ndarray:
    """A JPEG decoded by libjpeg-turbo (simplejpeg, as validate does) with its warnings as errors,
    then turned by its EXIF orientation as ``cv2.imread`` turns it."""
    import simplejpeg

    try:
        colorspace = simplejpeg.decode_jpeg_header(data)[2]
        if colorspace in ("CMYK", "YCCK"):  # libjpeg cannot convert these to BGR; OpenCV can
            simplejpeg.decode_jpeg(data, colorspace="CMYK", strict=True)
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        else:
            bgr = simplejpeg.decode_jpeg(data, colorspace="BGR", strict=True)
    except ValueError as err:  # "Premature end of JPEG file", "Corrupt JPEG data: ...", "Not a JPEG file"
        raise ImageReadError(f"{path}: not a readable image (corrupt JPEG data: {err}; a decoder would fill "
                             "the damaged part with grey: replace the file with an intact copy)") from err
    transpose, flip = _EXIF_TRANSFORMS.get(_exif_orientation(data), (False, None))
    if transpose:
        bgr = cv2.transpose(bgr)
    return bgr if flip is None else cv2.flip(bgr, flip)


def _exif_orientation(data: bytes) -> int:
    """The EXIF Orientation of a JPEG (1 when it has none)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return int(im.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - an unreadable EXIF block is ignored, as OpenCV ignores it
        return 1


# ---------------------------------------------------------------------------
# Models: a callable (N, 3, H, W) float32 RGB 0..255 -> (N, 19, H, W) logits, plus its input size

METADATA_KEY = "faceparse"  # the ONNX model's metadata entry that faceparse.export writes


def ort_session(path: str | Path, threads: int):
    """An onnxruntime CPU session of ``path`` (``threads`` intra-op threads, one inter-op); here, not
    in :mod:`faceparse.export`, so that parsing with an ONNX model never imports torch."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _values(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"


class OnnxBackend:
    """An export of :mod:`faceparse.export`, run by onnxruntime on the CPU."""

    def __init__(self, path: str | Path, threads: int = 1):
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such ONNX file")
        try:
            self.session = ort_session(self.path, threads)
        except Exception as err:  # noqa: BLE001 - onnxruntime's InvalidProtobuf, Fail, ... for a damaged file
            raise ModelError(f"{self.path}: not a usable ONNX model ({_one_line(err)})") from err
        meta = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if meta is None:
            raise ModelError(f"{self.path}: no '{METADATA_KEY}' metadata; export the model with faceparse.export")
        self.meta = json.loads(meta)
        self.resize: dict = self.meta["resize"]
        self.tta: dict | None = self.meta.get("tta")
        self.description = f"ONNX {self.path}"
        norm = self.meta.get("normalisation", {})
        self.normalisation = (f"mean {_values(norm.get('mean', []))}, std {_values(norm.get('std', []))} "
                              "inside the ONNX graph (from its export)")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(["logits"], {"image": batch})[0]


@dataclass(frozen=True)
class Normalisation:
    """The mean/std a checkpoint was trained with (None: the config's own) and where they came from."""

    mean: list[float] | None
    std: list[float] | None
    source: str


class TorchBackend:
    """A trained checkpoint run by PyTorch (the exportable form of the segmentor, same computation)."""

    def __init__(self, config: str | Path, checkpoint: str | Path, device: str = "cpu",
                 normalisation: Normalisation | None = None):
        import torch

        from faceparse.export import exportable, input_resize
        from faceparse.predict.models import load_model

        norm = normalisation or Normalisation(None, None, f"the config {config}")
        model, cfg = load_model(config, checkpoint, device)
        pre = cfg.model.data_preprocessor
        if norm.mean is not None:
            pre.mean, pre.std = list(norm.mean), list(norm.std)
        self.module = exportable(model, cfg).to(device)
        self.device = device
        self.resize = input_resize(cfg)
        self.tta = None
        self.description = f"checkpoint {checkpoint} (config {config})"
        self.normalisation = f"mean {_values(pre.mean)}, std {_values(pre.std)} from {norm.source}"
        self._torch = torch

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            return self.module(self._torch.from_numpy(batch).to(self.device)).float().cpu().numpy()


def load_backend(model: str | Path, config: str | Path | None = None, device: str = "cpu", threads: int = 1,
                 stats: str | Path | None = None):
    """An ``.onnx`` file, a run's ``best.json`` (``train.json`` beside it), or a checkpoint + ``config``
    (normalised with the mean/std of its run, see :func:`run_normalisation`, or of ``stats``).

    Raises :class:`ModelError` (or ``OSError``) with a one-line message for anything unusable."""
    model = Path(model)
    if model.suffix.lower() == ".onnx":
        if stats is not None:
            raise ModelError("--stats is for a checkpoint: an ONNX model normalises inside its graph")
        return OnnxBackend(model, threads)
    if model.suffix.lower() == ".json":
        if stats is not None:
            raise ModelError("--stats is for a checkpoint with --config: a run's best.json uses the run's config")
        from faceparse.predict.models import model_paths

        config, checkpoint = model_paths(model, model.parent / "train.json")
        _checkpoint_meta(Path(checkpoint))  # a damaged checkpoint: one line, before mmengine's traceback
        norm = Normalisation(None, None, f"the run's config {config}")
    else:
        if config is None:
            raise ModelError(f"{model}: a checkpoint needs --config (its mmseg config), or pass a best.json or .onnx")
        if not model.is_file():
            raise ModelError(f"{model}: no such checkpoint")
        checkpoint = model
        norm = run_normalisation(model, _checkpoint_meta(model), stats)
    if device == "cpu":
        import torch

        torch.set_num_threads(max(1, int(threads)))
    try:
        return TorchBackend(config, checkpoint, device, norm)
    except Exception as err:  # noqa: BLE001 - mmengine/torch/mmseg errors of a config or weights that do not fit
        raise ModelError(f"{checkpoint}: cannot build the model with config {config} "
                         f"({type(err).__name__}: {_one_line(err)})") from err


def _checkpoint_meta(path: Path) -> dict:
    """The ``meta`` of a checkpoint, opened as the train step checks checkpoints (torch's
    ``weights_only`` loader, memory-mapped): a damaged file is a :class:`ModelError`."""
    import torch

    from faceparse.mm import compat

    compat.apply()
    try:
        checkpoint = torch.load(str(path), map_location="cpu", mmap=True, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure means the file cannot be used
        raise ModelError(f"{path}: not a usable checkpoint ({type(err).__name__}: {_one_line(err)})") from err
    meta = checkpoint.get("meta") if isinstance(checkpoint, dict) else None
    return meta if isinstance(meta, dict) else {}


def run_normalisation(checkpoint: Path, meta: dict, stats: str | Path | None = None) -> Normalisation:
    """The mean/std a checkpoint was trained with: ``stats`` (a stats.json) when given, else the
    ``model.data_preprocessor`` of its run's config - the text mmengine's Runner stores in the
    checkpoint (``meta["cfg"]``, the resolved config's ``pretty_text``), else the ``config.py`` the
    train step dumped beside it. A model config file has the data's mean/std only after the train
    step filled them in from ``stats.json``, so without any of these the checkpoint is refused."""
    if stats is not None:
        return _stats_file(Path(stats))
    found = _preprocessor_stats(meta["cfg"]) if isinstance(meta.get("cfg"), str) else None
    if found is not None:
        return Normalisation(*found, f"the run's config stored in {checkpoint} (meta cfg)")
    dumped = checkpoint.parent / "config.py"
    found = _preprocessor_stats(dumped.read_text()) if dumped.is_file() else None
    if found is not None:
        return Normalisation(*found, f"the run's config {dumped} beside the checkpoint")
    raise ModelError(f"{checkpoint}: cannot tell the mean/std it was trained with (no config in its meta, no "
                     "config.py beside it): pass --stats with its run's stats.json (results/data/stats.json)")


def _stats_file(path: Path) -> Normalisation:
    """The mean/std of a ``stats.json`` (the stats step's record: RGB, 0..255)."""
    try:
        stats = json.loads(path.read_text())
        mean, std = [float(v) for v in stats["mean"]], [float(v) for v in stats["std"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelError(f"--stats {path}: not a stats.json with mean and std ({_one_line(err)})") from err
    if len(mean) != 3 or len(std) != 3:
        raise ModelError(f"--stats {path}: mean and std need 3 values each (RGB), got {mean} and {std}")
    return Normalisation(mean, std, f"--stats {path}")


def _preprocessor_stats(text: str) -> tuple[list[float], list[float]] | None:
    """``model.data_preprocessor``'s mean and std in a config's text, read without running it."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    model = next((node.value for node in tree.body if isinstance(node, ast.Assign)
                  and any(isinstance(t, ast.Name) and t.id == "model" for t in node.targets)), None)
    pre = _dict_item(model, "data_preprocessor")
    try:
        mean, std = ast.literal_eval(_dict_item(pre, "mean")), ast.literal_eval(_dict_item(pre, "std"))
        return [float(v) for v in mean], [float(v) for v in std]
    except (ValueError, TypeError, SyntaxError):
        return None


def _dict_item(node: ast.AST | None, key: str) -> ast.AST | None:
    """The value of ``key`` in a ``dict(key=...)`` or ``{'key': ...}`` expression (None when absent)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        return next((kw.value for kw in node.keywords if kw.arg == key), None)
    if isinstance(node, ast.Dict):
        return next((v for k, v in zip(node.keys, node.values)
                     if isinstance(k, ast.Constant) and k.value == key), None)
    return None


# ---------------------------------------------------------------------------
# TTA


def _rescale_size(w: int, h: int, scale: Sequence[int]) -> tuple[int, int]:
    """mmcv's ``rescale_size``: the largest (w, h) of the photo's aspect that fits ``scale``."""
    factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(w * factor + 0.5), int(h * factor + 0.5)


def _resize_rows(scores: np.ndarray, rows: slice, h: int, w: int) -> np.ndarray:
    """Rows ``rows`` of ``scores`` (C, h', w') resized to (C, h, w): bilinear with half-pixel centres
    (cv2's INTER_LINEAR, torch's ``align_corners=False`` as mmseg resizes logits). Vertically by
    numpy from the source rows the strip needs, horizontally by cv2 on the (C * rows, w') plane."""
    c, sh, sw = scores.shape
    if sh == h:
        part = np.array(scores[:, rows])
    else:
        src = np.maximum((np.arange(rows.start, rows.stop) + 0.5) * (sh / h) - 0.5, 0.0)
        top = np.minimum(src.astype(np.intp), sh - 1)
        frac = (src - top).astype(np.float32)[:, None]
        part = scores[:, top]
        part *= 1 - frac
        part += scores[:, np.minimum(top + 1, sh - 1)] * frac
    if sw == w:
        return part
    k = part.shape[1]
    return cv2.resize(part.reshape(c * k, sw), (w, c * k), interpolation=cv2.INTER_LINEAR).reshape(c, k, w)


def _softmax_(scores: np.ndarray) -> np.ndarray:
    """Softmax over the class axis (0), in place."""
    scores -= scores.max(axis=0)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=0)
    return scores


class Parser:
    """Face-aware TTA over one model: ``parse(bgr image) -> (H, W) uint8 labels``."""

    def __init__(self, backend: Callable[[np.ndarray], np.ndarray], scales: Sequence[float], flip: bool):
        if not scales:
            raise ValueError("TTA needs at least one scale")
        self.backend = backend
        self.scales = [float(s) for s in scales]
        self.flip = bool(flip)

    def input_size(self, h: int, w: int, factor: float) -> tuple[int, int]:
        """(h, w) the model sees for an h x w photo at TTA scale ``factor`` (mmseg's Resize rules)."""
        resize = self.backend.resize
        if resize["scale"] is not None:
            target = tuple(int(round(s * factor)) for s in resize["scale"])
            if not resize["keep_ratio"]:
                return target[1], target[0]
        else:
            target = (int(w * factor + 0.5), int(h * factor + 0.5))
        nw, nh = _rescale_size(w, h, target)
        return nh, nw

    def views(self, bgr: np.ndarray) -> list[np.ndarray]:
        """The class scores (19, h', w') of every TTA view at the model's resolution, a mirrored
        view mirrored back with its left/right channels swapped. A photo too thin to resize to at
        least one pixel at some scale is a :class:`PhotoError`."""
        h, w = bgr.shape[:2]
        views = []
        for factor in self.scales:
            nh, nw = self.input_size(h, w, factor)
            if nh < 1 or nw < 1:
                raise PhotoError(f"a {h}x{w} (HxW) photo is too thin for the model: at TTA scale {factor:g} "
                                 f"it would be resized to {nh}x{nw} pixels")
            resized = bgr if (nh, nw) == (h, w) else cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
            chw = np.ascontiguousarray(resized[..., ::-1].transpose(2, 0, 1), dtype=np.float32)
            logits = self.backend(np.ascontiguousarray(np.stack([chw, chw[..., ::-1]]) if self.flip else chw[None]))
            views.append(logits[0])
            if self.flip:
                views.append(np.ascontiguousarray(logits[1][SWAP, :, ::-1]))
        return views

    @staticmethod
    def scores(views: Sequence[np.ndarray], rows: slice, h: int, w: int, softmax: bool) -> np.ndarray:
        """(19, rows, w) float32: rows of the views' scores resized to the h x w photo, softmaxed
        and summed (``softmax``), or the resized logits of a single view."""
        total = None
        for view in views:
            resized = _resize_rows(view, rows, h, w)
            if softmax:
                _softmax_(resized)
            total = resized if total is None else np.add(total, resized, out=total)
        return total

    def probabilities(self, bgr: np.ndarray) -> np.ndarray:
        """(19, H, W) float32: the mean class probabilities over the TTA views, of the whole photo at
        once (19 floats a pixel: :meth:`parse` works in row strips instead)."""
        views = self.views(bgr)
        h, w = bgr.shape[:2]
        return self.scores(views, slice(0, h), h, w, softmax=True) / len(views)

    def parse(self, bgr: np.ndarray) -> np.ndarray:
        """(H, W) uint8 labels: the argmax of the mean probabilities, made in row strips of
        :data:`STRIP_VALUES` class scores; one view is argmaxed without a softmax (same labels)."""
        views = self.views(bgr)
        h, w = bgr.shape[:2]
        labels = np.empty((h, w), np.uint8)
        step = max(1, STRIP_VALUES // (NUM_CLASSES * w))
        for y in range(0, h, step):
            rows = slice(y, min(y + step, h))
            labels[rows] = self.scores(views, rows, h, w, softmax=len(views) > 1).argmax(axis=0)
        return labels


# ---------------------------------------------------------------------------
# A folder


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
            raise FolderError(f"{path}: the output folder is the input folder ({out}): the labels would "
                              "replace photos (face.png) and a later run would parse them; choose another folder")
        inside = [p.name for p in photos if p.resolve().parent == out]
        if inside:
            raise FolderError(f"{path}: the output folder holds input photos ({_names(inside)}, through "
                              "symlinks): choose another folder")
        before = set(os.listdir(path)) - {SUMMARY} if path.is_dir() else set()
        earlier = _earlier_outputs(path / SUMMARY)
        planned = [name for p in photos for name in (f"{p.stem}.png", f"{p.stem}_overlay.jpg")]
        foreign = sorted({name for name in planned if name in before and name not in (earlier or set())})
        if foreign:
            raise FolderError(f"{path}: holds {len(foreign)} file(s) this run would replace that no earlier parse "
                              f"run wrote ({_names(foreign)}): move them or choose another folder")
        path.mkdir(parents=True, exist_ok=True)
        folder = cls(path, earlier or set(), before, earlier is not None)
        write_json(path / SUMMARY, {"status": "running", "in_dir": str(in_dir), "out_dir": str(path),
                                    "parsed": 0, "outputs": sorted(folder.earlier | set(planned))})
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
        raise FolderError(f"{summary}: not the summary of an earlier parse run, and this run would replace it: "
                          "move it or choose another folder")
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
    step = max(1, STRIP_VALUES // bgr.shape[1])
    for y in range(0, len(bgr), step):
        base = mask[y:y + step].astype(np.uint16) << 8
        for c in range(3):
            np.take(table[c], base | bgr[y:y + step, :, 2 - c], out=out[y:y + step, :, c])
    return Image.fromarray(out)


def _parse_photo(path: Path, parser: Parser, folder: OutputFolder, alpha: float) -> None:
    bgr = read_image(path)
    mask = parser.parse(bgr)
    folder.save(f"{path.stem}.png", lambda f: Image.fromarray(mask).save(f, format="PNG"))
    folder.save(f"{path.stem}_overlay.jpg", lambda f: _overlay(bgr, mask, alpha).save(f, format="JPEG", quality=90))


def parse_folder(in_dir: str | Path, out_dir: str | Path, parser: Parser, *, alpha: float = 0.5,
                 progress: bool = True) -> dict:
    """Labels and overlays of every image in ``in_dir`` into ``out_dir``; returns the summary
    (also written to ``out_dir/parse.json``). Files that cannot be parsed are listed under ``errors``;
    an unusable output folder (see :meth:`OutputFolder.open`) raises :class:`FolderError`."""
    from tqdm import tqdm

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise NotADirectoryError(f"{in_dir}: not a folder")
    entries = sorted(in_dir.iterdir())
    images = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir()]
    skipped = [p.name for p in entries if p not in images]
    if not images:
        raise FileNotFoundError(f"{in_dir}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    folder = OutputFolder.open(out_dir, in_dir, images)
    if folder.before:
        print(f"parse: warning: {out_dir} already holds {len(folder.before)} file(s), {len(folder.earlier)} "
              "written by an earlier parse run (replaced where this run writes the same name), the others "
              "left as they are", file=sys.stderr)
    written: dict[str, str] = {}
    errors: dict[str, str] = {}
    start = time.perf_counter()
    for path in tqdm(images, desc="parse", unit="image", disable=not progress):
        try:
            if path.stem in written:
                raise ImageReadError(f"{path}: same output name {path.stem}.png as {written[path.stem]}")
            _parse_photo(path, parser, folder, alpha)
            written[path.stem] = path.name
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
    write_json(out_dir / SUMMARY, summary)
    return summary


def _configured_tta(configfile: Path) -> dict | None:
    if not configfile.is_file():
        return None
    import yaml

    return (yaml.safe_load(configfile.read_text()) or {}).get("tta")


def _arguments() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m faceparse.parse", description=__doc__.split("\n\n")[0])
    ap.add_argument("in_dir", type=Path, help="folder of photos (.jpg, .png, ...)")
    ap.add_argument("out_dir", type=Path, help="where {stem}.png labels and {stem}_overlay.jpg go "
                                               "(not the input folder)")
    ap.add_argument("--model", required=True, type=Path,
                    help="an exported .onnx, a run's best.json, or a checkpoint (with --config)")
    ap.add_argument("--config", type=Path, help="the mmseg config of a checkpoint given as --model")
    ap.add_argument("--stats", type=Path,
                    help="a checkpoint's stats.json (mean/std), when neither its meta nor a config.py "
                         "beside it holds its run's config")
    ap.add_argument("--scales", type=float, nargs="+", help="TTA scales (default: the model's or config's)")
    ap.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                    help="face-aware flip TTA (default: the model's or config's)")
    ap.add_argument("--configfile", type=Path, default=Path("config.yaml"),
                    help="pipeline config whose `tta` is the default for checkpoints (default: config.yaml)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for the model")
    ap.add_argument("--device", default="cpu", help="PyTorch device for a checkpoint (e.g. cuda:0)")
    ap.add_argument("--alpha", type=float, default=0.5, help="overlay opacity")
    return ap


def _report(summary: dict) -> None:
    """The end of a run on stderr: counts, the folder's other files, the failures."""
    out = summary["out_dir"]
    print(f"parse: {summary['parsed']} of {summary['images']} images written to {out} "
          f"in {summary['seconds']:.1f} s", file=sys.stderr)
    for key, what in (("replaced", "replaced, written by an earlier run"),
                      ("earlier_outputs_left", "left from an earlier run (this run did not write them)"),
                      ("other_files", "not written by parse, left as they are")):
        if summary[key]:
            print(f"parse: {len(summary[key])} file(s) in {out} {what}: {_names(summary[key])}", file=sys.stderr)
    if summary["skipped_not_images"]:
        print(f"parse: skipped (not images): {', '.join(summary['skipped_not_images'])}", file=sys.stderr)
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
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    tta = backend.tta or _configured_tta(args.configfile) or {"scales": [1.0], "flip": False}
    scales = args.scales or tta["scales"]
    flip = tta["flip"] if args.flip is None else args.flip
    print(f"parse: {backend.description}; TTA scales {scales}, flip {flip}", file=sys.stderr)
    print(f"parse: normalisation {backend.normalisation}", file=sys.stderr)
    try:
        summary = parse_folder(args.in_dir, args.out_dir, Parser(backend, scales, flip), alpha=args.alpha)
    except (OSError, FolderError) as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    _report(summary)
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())

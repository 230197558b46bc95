"""Single photos through a model: the ONNX contract, the model backends and the face-aware TTA parser.

- a model is a callable ``(N, 3, H, W)`` float32 RGB 0..255 -> ``(N, 19, H, W)`` logits with its
  input size: an export of :mod:`faceparse.predict.export` run by onnxruntime
  (:class:`OnnxBackend`, no torch needed; :data:`METADATA_KEY` is the contract's metadata), or a
  checkpoint run by PyTorch in its exportable form (:class:`TorchBackend`), normalised with
  its own run's mean/std (:func:`run_normalisation`);
- :func:`read_image` decodes a photo as mmseg's loader does, JPEGs strictly;
- :class:`Parser` is the face-aware TTA of :mod:`faceparse.mm.tta` over one photo: each view
  resized to the model's input size, its class scores resized back in row strips (no
  photo-sized array of class scores is held), softmaxed, the mirrored ones un-flipped with their
  left/right channels swapped (:data:`faceparse.labels.SWAP`), averaged and argmaxed; a single
  view is argmaxed without a softmax (the same labels).
"""

from __future__ import annotations

import ast
import io
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from faceparse.labels import NUM_CLASSES, SWAP

log = logging.getLogger(__name__)

# Class scores per row strip (float32: 4 MB): the resize back to the photo, softmax and argmax work
# strip by strip, so memory does not grow with 19 x the photo's pixels.
STRIP_VALUES = 1 << 20

__all__ = [
    "PhotoError",
    "ImageReadError",
    "ModelError",
    "one_line",
    "read_image",
    "METADATA_KEY",
    "ort_session",
    "OnnxBackend",
    "Normalisation",
    "TorchBackend",
    "load_backend",
    "run_normalisation",
    "Parser",
]


class PhotoError(ValueError):
    """A photo that cannot be parsed: reported for that file, the others are still parsed."""


class ImageReadError(PhotoError):
    """A file that is not a readable image (the message names the file)."""


class ModelError(ValueError):
    """A model, its config or its statistics that cannot be used (one line, exit status 2)."""


def one_line(err: BaseException) -> str:
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
    2: (False, 1),
    3: (False, -1),
    4: (False, 0),
    5: (True, None),
    6: (True, 1),
    7: (True, -1),
    8: (True, 0),
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
        raise ImageReadError(
            f"{path}: not a readable image (corrupt JPEG data: {err}; a decoder would fill "
            "the damaged part with grey: replace the file with an intact copy)"
        ) from err
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

METADATA_KEY = "faceparse"  # the ONNX model's metadata entry that faceparse.predict.export writes


def ort_session(path: str | Path, threads: int):
    """An onnxruntime CPU session of ``path`` (``threads`` intra-op threads, one inter-op); here, not
    in :mod:`faceparse.predict.export`, so that parsing with an ONNX model never imports torch."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _values(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"


class OnnxBackend:
    """An export of :mod:`faceparse.predict.export`, run by onnxruntime on the CPU."""

    def __init__(self, path: str | Path, threads: int = 1):
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such ONNX file")
        try:
            self.session = ort_session(self.path, threads)
        except Exception as err:  # noqa: BLE001 - onnxruntime's InvalidProtobuf, Fail, ... for a damaged file
            raise ModelError(f"{self.path}: not a usable ONNX model ({one_line(err)})") from err
        meta = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if meta is None:
            raise ModelError(
                f"{self.path}: no '{METADATA_KEY}' metadata; export the model with faceparse.predict.export"
            )
        self.meta = json.loads(meta)
        self.resize: dict = self.meta["resize"]
        self.tta: dict | None = self.meta.get("tta")
        self.framing: dict | None = self.meta.get("framing")  # the training framing (exports since 0.3)
        self.description = f"ONNX {self.path}"
        norm = self.meta.get("normalisation", {})
        self.normalisation = (
            f"mean {_values(norm.get('mean', []))}, std {_values(norm.get('std', []))} "
            "inside the ONNX graph (from its export)"
        )

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

    def __init__(
        self,
        config: str | Path,
        checkpoint: str | Path,
        device: str = "cpu",
        normalisation: Normalisation | None = None,
    ):
        # deferred here and below: torch and mmseg (seconds, ~650 MB) are for checkpoints only;
        # parsing with an ONNX model never imports them
        import torch

        from faceparse.mm.pipelines import input_resize
        from faceparse.predict.exportable import exportable
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
        self.framing: dict | None = None  # a checkpoint does not hold it: see faceparse.predict.parse
        self.description = f"checkpoint {checkpoint} (config {config})"
        self.normalisation = f"mean {_values(pre.mean)}, std {_values(pre.std)} from {norm.source}"
        self._torch = torch

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            return self.module(self._torch.from_numpy(batch).to(self.device)).float().cpu().numpy()


def load_backend(
    model: str | Path,
    config: str | Path | None = None,
    device: str = "cpu",
    threads: int = 1,
    stats: str | Path | None = None,
):
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
        raise ModelError(
            f"{checkpoint}: cannot build the model with config {config} ({type(err).__name__}: {one_line(err)})"
        ) from err


def _checkpoint_meta(path: Path) -> dict:
    """The ``meta`` of a checkpoint, opened as the train step checks checkpoints
    (:func:`faceparse.mm.compat.open_checkpoint`): a damaged file is a :class:`ModelError`."""
    from faceparse.mm.compat import open_checkpoint

    try:
        checkpoint = open_checkpoint(path)
    except Exception as err:  # noqa: BLE001 - any failure means the file cannot be used
        raise ModelError(f"{path}: not a usable checkpoint ({type(err).__name__}: {one_line(err)})") from err
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
    raise ModelError(
        f"{checkpoint}: cannot tell the mean/std it was trained with (no config in its meta, no "
        "config.py beside it): pass --stats with its run's stats.json (results/data/stats.json)"
    )


def _stats_file(path: Path) -> Normalisation:
    """The mean/std of a ``stats.json`` (the stats step's record: RGB, 0..255)."""
    try:
        stats = json.loads(path.read_text())
        mean, std = [float(v) for v in stats["mean"]], [float(v) for v in stats["std"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelError(f"--stats {path}: not a stats.json with mean and std ({one_line(err)})") from err
    if len(mean) != 3 or len(std) != 3:
        raise ModelError(f"--stats {path}: mean and std need 3 values each (RGB), got {mean} and {std}")
    return Normalisation(mean, std, f"--stats {path}")


def _preprocessor_stats(text: str) -> tuple[list[float], list[float]] | None:
    """``model.data_preprocessor``'s mean and std in a config's text, read without running it."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    model = next(
        (
            node.value
            for node in tree.body
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "model" for t in node.targets)
        ),
        None,
    )
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
        return next((v for k, v in zip(node.keys, node.values) if isinstance(k, ast.Constant) and k.value == key), None)
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
                raise PhotoError(
                    f"a {h}x{w} (HxW) photo is too thin for the model: at TTA scale {factor:g} "
                    f"it would be resized to {nh}x{nw} pixels"
                )
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

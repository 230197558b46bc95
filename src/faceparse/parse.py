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
face-aware TTA of :mod:`faceparse.mm.tta`. TTA comes from ``--scales`` /
``--flip``, else from the ONNX model (the TTA configured when it was
exported), else from ``--configfile`` (``config.yaml``).

A file that cannot be read is reported and skipped; the others are still
written, a summary lists the failures and the exit status is 1.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from faceparse.colourise import overlay
from faceparse.labels import NUM_CLASSES, SWAP
from faceparse.records import write_json

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})

__all__ = ["ImageReadError", "read_image", "OnnxBackend", "TorchBackend", "load_backend", "Parser",
           "parse_folder", "main"]


class ImageReadError(ValueError):
    """A file that is not a readable image."""


def read_image(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 BGR, decoded as mmseg's ``LoadImageFromFile`` does (OpenCV, EXIF rotation applied)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is not None:
        return image
    try:
        with Image.open(path) as im:
            im.load()
        reason = f"OpenCV cannot decode this {im.format} file"
    except Exception as err:  # noqa: BLE001 - PIL's exception is only used for its message
        reason = str(err) or type(err).__name__
    raise ImageReadError(f"{path}: not a readable image ({reason})")


# ---------------------------------------------------------------------------
# Models: a callable (N, 3, H, W) float32 RGB 0..255 -> (N, 19, H, W) logits, plus its input size


class OnnxBackend:
    """An export of :mod:`faceparse.export`, run by onnxruntime on the CPU."""

    def __init__(self, path: str | Path, threads: int = 1):
        from faceparse.export import METADATA_KEY, _ort_session

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such ONNX file")
        self.session = _ort_session(self.path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if meta is None:
            raise ValueError(f"{self.path}: no '{METADATA_KEY}' metadata; export the model with faceparse.export")
        self.meta = json.loads(meta)
        self.resize: dict = self.meta["resize"]
        self.tta: dict | None = self.meta.get("tta")
        self.description = f"ONNX {self.path}"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(["logits"], {"image": batch})[0]


class TorchBackend:
    """A trained checkpoint run by PyTorch (the exportable form of the segmentor, same computation)."""

    def __init__(self, config: str | Path, checkpoint: str | Path, device: str = "cpu"):
        import torch

        from faceparse.export import exportable, input_resize
        from faceparse.inference import load_model

        model, cfg = load_model(config, checkpoint, device)
        self.module = exportable(model, cfg).to(device)
        self.device = device
        self.resize = input_resize(cfg)
        self.tta = None
        self.description = f"checkpoint {checkpoint} (config {config})"
        self._torch = torch

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            return self.module(self._torch.from_numpy(batch).to(self.device)).float().cpu().numpy()


def load_backend(model: str | Path, config: str | Path | None = None, device: str = "cpu", threads: int = 1):
    """An ``.onnx`` file, a run's ``best.json`` (``train.json`` beside it), or a checkpoint + ``config``."""
    model = Path(model)
    if model.suffix.lower() == ".onnx":
        return OnnxBackend(model, threads)
    if device == "cpu":
        import torch

        torch.set_num_threads(max(1, int(threads)))
    if model.suffix.lower() == ".json":
        from faceparse.inference import model_paths

        config_path, checkpoint = model_paths(model, model.parent / "train.json")
        return TorchBackend(config_path, checkpoint, device)
    if config is None:
        raise ValueError(f"{model}: a checkpoint needs --config (its mmseg config), or pass a best.json or .onnx")
    if not model.is_file():
        raise FileNotFoundError(f"{model}: no such checkpoint")
    return TorchBackend(config, model, device)


# ---------------------------------------------------------------------------
# TTA


def _rescale_size(w: int, h: int, scale: Sequence[int]) -> tuple[int, int]:
    """mmcv's ``rescale_size``: the largest (w, h) of the photo's aspect that fits ``scale``."""
    factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(w * factor + 0.5), int(h * factor + 0.5)


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


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

    def probabilities(self, bgr: np.ndarray) -> np.ndarray:
        """(19, H, W) float32: the mean class probabilities over the TTA views."""
        h, w = bgr.shape[:2]
        total = np.zeros((NUM_CLASSES, h, w), np.float32)
        for factor in self.scales:
            nh, nw = self.input_size(h, w, factor)
            resized = bgr if (nh, nw) == (h, w) else cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
            chw = np.ascontiguousarray(resized[..., ::-1].transpose(2, 0, 1), dtype=np.float32)
            views = [chw, chw[..., ::-1]] if self.flip else [chw]
            logits = self.backend(np.ascontiguousarray(np.stack(views)))
            for v, view_logits in enumerate(logits):
                if v == 1:
                    view_logits = view_logits[..., ::-1]
                hwc = np.ascontiguousarray(view_logits.transpose(1, 2, 0))
                if (nh, nw) != (h, w):
                    hwc = cv2.resize(hwc, (w, h), interpolation=cv2.INTER_LINEAR)
                probs = _softmax(hwc.transpose(2, 0, 1))
                total += probs[SWAP] if v == 1 else probs
        return total / (len(self.scales) * (2 if self.flip else 1))

    def parse(self, bgr: np.ndarray) -> np.ndarray:
        return self.probabilities(bgr).argmax(axis=0).astype(np.uint8)


# ---------------------------------------------------------------------------
# A folder


def parse_folder(in_dir: str | Path, out_dir: str | Path, parser: Parser, *, alpha: float = 0.5,
                 progress: bool = True) -> dict:
    """Labels and overlays of every image in ``in_dir`` into ``out_dir``; returns the summary
    (also written to ``out_dir/parse.json``). Unreadable files are listed under ``errors``."""
    from tqdm import tqdm

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise NotADirectoryError(f"{in_dir}: not a folder")
    entries = sorted(in_dir.iterdir())
    images = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir()]
    skipped = [p.name for p in entries if p not in images]
    if not images:
        raise FileNotFoundError(f"{in_dir}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    errors: dict[str, str] = {}
    start = time.perf_counter()
    for path in tqdm(images, desc="parse", unit="image", disable=not progress):
        try:
            if path.stem in written:
                raise ImageReadError(f"{path}: same output name {path.stem}.png as {written[path.stem]}")
            bgr = read_image(path)
            mask = parser.parse(bgr)
            Image.fromarray(mask, mode="L").save(out_dir / f"{path.stem}.png")
            Image.fromarray(overlay(bgr[..., ::-1], mask, alpha)).save(out_dir / f"{path.stem}_overlay.jpg",
                                                                       quality=90)
            written[path.stem] = path.name
        except (ImageReadError, OSError, cv2.error) as err:  # cv2.error: e.g. a photo too thin to resize
            errors[path.name] = str(err) if isinstance(err, ImageReadError) else f"{path}: {err}"
            tqdm.write(f"error: {errors[path.name]}", file=sys.stderr)
    summary = {
        "in_dir": str(in_dir),
        "out_dir": str(out_dir),
        "images": len(images),
        "parsed": len(written),
        "failed": len(errors),
        "errors": errors,
        "skipped_not_images": skipped,
        "tta": {"scales": parser.scales, "flip": parser.flip},
        "model": getattr(parser.backend, "description", type(parser.backend).__name__),
        "seconds": time.perf_counter() - start,
    }
    write_json(out_dir / "parse.json", summary)
    return summary


def _configured_tta(configfile: Path) -> dict | None:
    if not configfile.is_file():
        return None
    import yaml

    return (yaml.safe_load(configfile.read_text()) or {}).get("tta")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m faceparse.parse", description=__doc__.split("\n\n")[0])
    ap.add_argument("in_dir", type=Path, help="folder of photos (.jpg, .png, ...)")
    ap.add_argument("out_dir", type=Path, help="where {stem}.png labels and {stem}_overlay.jpg go")
    ap.add_argument("--model", required=True, type=Path,
                    help="an exported .onnx, a run's best.json, or a checkpoint (with --config)")
    ap.add_argument("--config", type=Path, help="the mmseg config of a checkpoint given as --model")
    ap.add_argument("--scales", type=float, nargs="+", help="TTA scales (default: the model's or config's)")
    ap.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                    help="face-aware flip TTA (default: the model's or config's)")
    ap.add_argument("--configfile", type=Path, default=Path("config.yaml"),
                    help="pipeline config whose `tta` is the default for checkpoints (default: config.yaml)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for the model")
    ap.add_argument("--device", default="cpu", help="PyTorch device for a checkpoint (e.g. cuda:0)")
    ap.add_argument("--alpha", type=float, default=0.5, help="overlay opacity")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        backend = load_backend(args.model, args.config, args.device, args.threads)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    tta = backend.tta or _configured_tta(args.configfile) or {"scales": [1.0], "flip": False}
    scales = args.scales or tta["scales"]
    flip = tta["flip"] if args.flip is None else args.flip
    print(f"parse: {backend.description}; TTA scales {scales}, flip {flip}", file=sys.stderr)
    try:
        summary = parse_folder(args.in_dir, args.out_dir, Parser(backend, scales, flip), alpha=args.alpha)
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"parse: {summary['parsed']} of {summary['images']} images written to {args.out_dir} "
          f"in {summary['seconds']:.1f} s", file=sys.stderr)
    if summary["skipped_not_images"]:
        print(f"parse: skipped (not images): {', '.join(summary['skipped_not_images'])}", file=sys.stderr)
    if summary["errors"]:
        print(f"parse: {summary['failed']} failed:", file=sys.stderr)
        for name, message in summary["errors"].items():
            print(f"  {name}: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

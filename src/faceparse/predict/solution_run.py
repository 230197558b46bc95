"""Face parsing with CompactFaceNet: one photo in, one single-channel label PNG out.

    python run.py --input IMAGE --output MASK.png --weights ckpt.pth

Needs only PyTorch, OpenCV, Pillow and numpy, the network's file (``compact.py``) and the settings
(``solution.json``) beside this script. It predicts what the faceparse pipeline's predict step
predicted: the photo read by OpenCV (BGR), resized as mmcv resizes it (bilinear, keeping the aspect
ratio), channels swapped and normalised as mmseg's ``SegDataPreProcessor`` does, the class scores
resized bilinearly to the network's input and then to the photo, and the pipeline's test-time
augmentation: every scale, also mirrored with the left/right classes swapped back, softmaxed,
averaged, argmaxed; and, when ``solution.json`` has a ``postprocess``, the pipeline's clean-up of
the TTA mask (``postprocess.py`` beside this script: small regions relabelled, a majority filter).
The mask has the photo's size and values 0..18 (the CelebAMask-HQ classes).

(faceparse copies this file verbatim into a model's solution folder: faceparse.predict.solution.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from compact import CompactFaceNet  # noqa: E402 - the network's file, beside this script

SETTINGS = HERE / "solution.json"


def read_image(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 BGR, decoded as mmseg's ``LoadImageFromFile`` decodes it (OpenCV)."""
    image = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not an image OpenCV can read")
    return image


def rescale_size(w: int, h: int, scale: tuple[int, int]) -> tuple[int, int]:
    """mmcv's ``rescale_size``: the largest (w, h) of the photo's aspect that fits ``scale``."""
    factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(w * factor + 0.5), int(h * factor + 0.5)


def input_size(h: int, w: int, resize: dict, factor: float) -> tuple[int, int]:
    """(h, w) the network sees for an h x w photo at TTA scale ``factor`` (mmseg's ``Resize``)."""
    if resize["scale"] is None:
        target = (int(w * factor + 0.5), int(h * factor + 0.5))
    else:
        target = tuple(int(round(s * factor)) for s in resize["scale"])
        if not resize["keep_ratio"]:
            return target[1], target[0]
    nw, nh = rescale_size(w, h, target)
    return nh, nw


def view_logits(net: torch.nn.Module, bgr: np.ndarray, settings: dict, factor: float, flip: bool) -> torch.Tensor:
    """(C, H, W) class scores of one view, at the photo's size and un-mirrored."""
    h, w = bgr.shape[:2]
    nh, nw = input_size(h, w, settings["resize"], factor)
    image = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    if flip:
        image = image[:, ::-1]
    device = next(net.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).to(device)
    norm = settings["normalisation"]
    if norm["bgr_to_rgb"]:
        x = x[[2, 1, 0], ...]
    mean = torch.tensor(norm["mean"], device=device).view(-1, 1, 1)
    std = torch.tensor(norm["std"], device=device).view(-1, 1, 1)
    x = ((x.float() - mean) / std)[None]
    pad = settings["test_padding"]
    if pad is not None:  # mmseg's stack_batch: pad bottom and right, to a size or to a multiple of a divisor
        if pad["size"] is not None:
            th, tw = max(pad["size"][0], nh), max(pad["size"][1], nw)
        else:
            step = max(int(pad["size_divisor"]), 1)
            th, tw = -(-nh // step) * step, -(-nw // step) * step
        x = F.pad(x, (0, tw - nw, 0, th - nh), value=float(pad["pad_val"]))
    align = settings["align_corners"]
    # the scores at the (padded) input's size, the padding cut off, mirrored back, at the photo's size
    logits = F.interpolate(net(x), x.shape[2:], mode="bilinear", align_corners=align)[:, :, :nh, :nw]
    if flip:
        logits = logits.flip(dims=(3,))
    return F.interpolate(logits, (h, w), mode="bilinear", align_corners=align)[0]


@torch.no_grad()
def parse(net: torch.nn.Module, bgr: np.ndarray, settings: dict, tta: bool = True) -> np.ndarray:
    """(H, W) uint8 labels: the argmax of the mean softmax over the TTA views (a mirrored view's
    left/right channels swapped back); without ``tta`` one view at scale 1."""
    scales = settings["tta"]["scales"] if tta else [1.0]
    flips = [False, True] if tta and settings["tta"]["flip"] else [False]
    swap = torch.tensor(settings["tta"]["swap"], device=next(net.parameters()).device)
    probs = None
    for factor in scales:
        for flip in flips:
            p = view_logits(net, bgr, settings, float(factor), flip).softmax(dim=0)
            if flip:
                p = p[swap]
            probs = p if probs is None else probs.add_(p)
    probs /= len(scales) * len(flips)
    labels = probs.argmax(dim=0).to(torch.uint8).cpu().numpy()
    clean = settings.get("postprocess")
    if tta and clean:  # the pipeline's clean-up of the TTA masks (postprocess.py, beside this script)
        from postprocess import postprocess

        labels = postprocess(labels, clean["min_area"], clean["majority"])
    return labels


def load_network(weights: str | Path, settings: dict, device: str = "cpu") -> torch.nn.Module:
    """CompactFaceNet with the settings' arguments and ``ckpt["state_dict"]`` of ``weights``, in eval mode."""
    net = CompactFaceNet(**settings["network_kwargs"])
    state = torch.load(str(weights), map_location="cpu", weights_only=True)["state_dict"]
    net.load_state_dict(state, strict=True)
    return net.to(device).eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="a photo (JPEG, PNG, ...)")
    parser.add_argument("--output", required=True, help="the label mask to write (PNG, single channel)")
    parser.add_argument("--weights", default=str(HERE / "ckpt.pth"), help="checkpoint with a 'state_dict'")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, ...)")
    parser.add_argument("--no-tta", action="store_true", help="one view at scale 1 (faster; the no-TTA val score)")
    args = parser.parse_args(argv)
    settings = json.loads(SETTINGS.read_text())
    net = load_network(args.weights, settings, args.device)
    mask = parse(net, read_image(args.input), settings, tta=not args.no_tta)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask).save(output, format="PNG")
    return 0


if __name__ == "__main__":
    sys.exit(main())

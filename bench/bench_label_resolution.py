"""How much a network's output stride alone costs: the val masks, as one-hot maps averaged down
by a factor and upsampled back bilinearly (as mmseg resizes logits), scored against themselves.

The mIoU is a ceiling for any network whose logits come at that fraction of the input size and
are upsampled bilinearly (why CompactFaceNet's classifier, which works at 1/2, gives four logits
per position instead: a sub-pixel output at the full size). Scored at the size the demo's models
see (256 px).

Usage::

    python bench/bench_label_resolution.py results/data/source/val/masks --size 256
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from faceparse.labels import NUM_CLASSES
from faceparse.predict.metrics import confusion_matrix, scores


def ceiling(masks: list[np.ndarray], factor: int) -> float:
    """mIoU (classes present in truth or prediction) of the masks after a round trip at 1/factor."""
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for mask in masks:
        truth = torch.from_numpy(mask.astype(np.int64))
        one_hot = F.one_hot(truth.clamp(max=NUM_CLASSES - 1), NUM_CLASSES).permute(2, 0, 1)[None].float()
        low = F.avg_pool2d(one_hot, factor, ceil_mode=True) if factor > 1 else one_hot
        pred = F.interpolate(low, mask.shape, mode="bilinear", align_corners=False).argmax(1)[0].numpy()
        confusion += confusion_matrix(mask, pred)  # ignore pixels (255) left out
    return float(scores(confusion)["mIoU"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("masks", type=Path, help="a folder of label PNGs")
    ap.add_argument("--size", type=int, default=256, help="masks resized (nearest) to this square size")
    ap.add_argument("--factors", type=int, nargs="+", default=[2, 4, 8])
    args = ap.parse_args()
    paths = sorted(args.masks.glob("*.png"))
    if not paths:
        raise SystemExit(f"bench_label_resolution: no PNG masks in {args.masks}")
    masks = [np.asarray(Image.open(p).resize((args.size, args.size), Image.NEAREST)) for p in paths]
    for factor in args.factors:
        print(f"logits at 1/{factor}: mIoU ceiling {ceiling(masks, factor):.1f} ({len(masks)} masks at {args.size} px)")


if __name__ == "__main__":
    main()

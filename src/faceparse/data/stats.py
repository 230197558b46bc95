"""The `stats` step: exact per-channel mean and std (RGB, 0-255) of the training images.

One pass at full resolution: each worker decodes an image once and returns its per-channel
histogram (PIL's, 3 x 256 counts). Histograms add up exactly in integers, and the sum and the
sum of squares follow from them as exact Python integers, so there is no floating-point
accumulation error however many images there are (std is the population std, ddof=0).
The flipped copies are not read: mirroring moves pixels but does not change their values,
so the statistics of train + flipped train equal those of train.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from faceparse.parallel import parallel_map
from faceparse.splitfiles import split_files, write_json


def _histogram(path: str) -> list[int]:
    with Image.open(path) as im:
        if im.mode != "RGB":
            im = im.convert("RGB")
        return im.histogram()


def mean_std_from_histogram(hist: np.ndarray) -> tuple[list[float], list[float], int]:
    """Per-channel mean and population std from (channels, 256) integer counts; and the pixel count."""
    values = list(range(hist.shape[1]))
    means, stds = [], []
    n = 0
    for channel in hist:
        counts = [int(c) for c in channel]
        n = sum(counts)
        s = sum(c * v for c, v in zip(counts, values))
        q = sum(c * v * v for c, v in zip(counts, values))
        means.append(s / n)
        stds.append(math.sqrt((n * q - s * s) / (n * n)))
    return means, stds, n


def channel_stats(validation_json: str | Path, out_json: str | Path, threads: int = 1,
                  splits: tuple[str, ...] | list[str] = ("train",)) -> dict:
    """Mean and std over every image of `splits`; written to out_json."""
    images = [path for split in splits for path in split_files(validation_json, split).images]
    if not images:
        raise ValueError(f"no images in {list(splits)} to compute statistics from")
    total = np.zeros(768, np.int64)
    for hist in parallel_map(_histogram, images, threads, "stats"):
        total += np.asarray(hist, np.int64)
    mean, std, pixels = mean_std_from_histogram(total.reshape(3, 256))
    result = {"mean": mean, "std": std, "images": len(images), "pixels": pixels, "splits": list(splits)}
    write_json(out_json, result)
    return result

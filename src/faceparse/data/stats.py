"""The `stats` step: exact per-channel mean and std (RGB, 0-255) of the training images.

validate decodes every image once and records each split's RGB value histogram (3 x 256
counts, ``pixel_histogram`` in the dataset index); this step adds the histograms of the
training splits. Histograms add up exactly in integers, and the sum and the sum of squares
follow from them as exact Python integers, so there is no floating-point accumulation error
however many images there are (std is the population std, ddof=0). The flipped copies are not
counted: mirroring moves pixels but does not change their values, so the statistics of train +
flipped train equal those of train.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from faceparse.records import read_index, write_json


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


def channel_stats(
    validation_json: str | Path, out_json: str | Path, splits: tuple[str, ...] | list[str] = ("train",)
) -> dict:
    """Mean and std over every image of `splits`, from the index's histograms; written to out_json."""
    index = read_index(validation_json)["splits"]
    total = np.zeros(768, np.int64)
    images = 0
    for split in splits:
        entry = index[split]
        if "pixel_histogram" not in entry:
            raise ValueError(
                f"{validation_json}: split {split!r} has no pixel_histogram (written by an older "
                "faceparse): rerun validate (snakemake -R validate)"
            )
        total += np.asarray(entry["pixel_histogram"], np.int64)
        images += entry["images"]
    if not images:
        raise ValueError(f"no images in {list(splits)} to compute statistics from")
    mean, std, pixels = mean_std_from_histogram(total.reshape(3, 256))
    result = {"mean": mean, "std": std, "images": images, "pixels": pixels, "splits": list(splits)}
    write_json(out_json, result)
    return result

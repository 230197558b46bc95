"""Optional clean-up of predicted label masks: small-component removal per class, then a majority filter.

Students of the later editions reported that both cleaned their masks. The pipeline applies them
(``postprocess:`` in the config, off by default) to the TTA masks of ``evaluate`` and ``predict``,
and the solution's ``run.py`` applies the same: this file is copied byte for byte into the
solution folder, so it imports numpy and OpenCV only.

- ``min_area``: every 8-connected region of one class smaller than ``min_area`` pixels is
  relabelled with the class of the nearest pixel outside all such regions (a speck of ear in the
  hair becomes hair, a hole in the skin becomes skin). A region is kept whatever its size when
  every region of the mask is that small.
- ``majority``: then a ``majority`` x ``majority`` majority filter: each pixel takes the class most
  frequent in its window, keeping its own class on a tie (borders replicated).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["postprocess", "remove_small_regions", "majority_filter", "requested"]


def requested(settings: dict | None) -> dict | None:
    """``{"min_area", "majority"}`` of a config's ``postprocess`` as ints, or None when they ask for
    no clean-up (both off: 0 or 1)."""
    settings = dict(settings or {})
    wanted = {"min_area": int(settings.get("min_area", 0)), "majority": int(settings.get("majority", 0))}
    return wanted if wanted["min_area"] > 1 or wanted["majority"] > 1 else None


def remove_small_regions(labels: np.ndarray, min_area: int) -> np.ndarray:
    """``labels`` (H, W) uint8 with each class's connected regions under ``min_area`` pixels
    relabelled by the nearest pixel of a region that stays."""
    if min_area <= 1:
        return labels
    small = np.zeros(labels.shape, dtype=bool)
    for value in np.unique(labels):
        count, regions, stats, _ = cv2.connectedComponentsWithStats((labels == value).astype(np.uint8), connectivity=8)
        tiny = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] < min_area) + 1
        if tiny.size:
            small |= np.isin(regions, tiny)
    if not small.any() or small.all():
        return labels
    # the nearest kept pixel of every pixel: OpenCV numbers the zero (kept) pixels in raster order
    _, nearest = cv2.distanceTransformWithLabels(small.astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    out = labels.copy()
    out[small] = labels[~small][nearest[small] - 1]
    return out


def majority_filter(labels: np.ndarray, size: int, num_classes: int = 19) -> np.ndarray:
    """Each pixel of ``labels`` (H, W) takes its ``size`` x ``size`` window's most frequent class;
    its own class wins a tie."""
    if size <= 1:
        return labels
    counts = np.stack(
        [
            cv2.boxFilter(
                (labels == c).astype(np.float32), -1, (size, size), normalize=False, borderType=cv2.BORDER_REPLICATE
            )
            for c in range(num_classes)
        ]
    )
    best = counts.argmax(axis=0).astype(labels.dtype)
    own = np.take_along_axis(counts, labels[None].astype(np.intp), axis=0)[0]
    return np.where(own >= counts.max(axis=0), labels, best)


def postprocess(labels: np.ndarray, min_area: int = 0, majority: int = 0, num_classes: int = 19) -> np.ndarray:
    """:func:`remove_small_regions`, then :func:`majority_filter`; 0 (or 1) switches either off."""
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    return majority_filter(remove_small_regions(labels, min_area), majority, num_classes)

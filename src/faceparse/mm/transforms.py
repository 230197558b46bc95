"""Data transforms for faces."""

from __future__ import annotations

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmseg.registry import TRANSFORMS

from faceparse.labels import LR_PAIRS, SWAP_LUT


def swap_left_right(mask: np.ndarray, pairs=LR_PAIRS) -> np.ndarray:
    """Exchange the left/right labels of a (horizontally flipped) mask."""
    if mask.dtype == np.uint8 and tuple(pairs) == LR_PAIRS:
        return SWAP_LUT[mask]
    out = mask.copy()
    for left, right in pairs:
        out[mask == left] = right
        out[mask == right] = left
    return out


@TRANSFORMS.register_module()
class RandomFlipSwapLR(BaseTransform):
    """Horizontal flip with probability ``prob`` that also swaps left/right labels.

    mmcv's ``RandomFlip`` mirrors the mask but keeps its labels, so a flipped
    person's left eye stays labelled ``l_eye`` while sitting where the right eye
    should be. This transform mirrors ``img`` and every map in ``seg_fields``
    (and ``gt_seg_map``) and maps the mask through the left/right swap
    (4<->5, 6<->7, 8<->9 by default).

    Required keys: ``img``; modified: ``img``, ``gt_seg_map``, ``seg_fields``;
    added: ``flip``, ``flip_direction``.

    Args:
        prob: probability of flipping.
        pairs: label pairs to exchange; default :data:`faceparse.labels.LR_PAIRS`.
    """

    def __init__(self, prob: float = 0.5, pairs=LR_PAIRS) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"RandomFlipSwapLR: prob must be in [0, 1], got {prob}")
        self.prob = prob
        self.pairs = tuple(tuple(p) for p in pairs)

    @cache_randomness
    def _do_flip(self) -> bool:
        return bool(np.random.rand() < self.prob)

    def transform(self, results: dict) -> dict:
        flip = self.prob > 0 and self._do_flip()
        results["flip"] = flip
        results["flip_direction"] = "horizontal" if flip else None
        if not flip:
            return results
        results["img"] = np.ascontiguousarray(results["img"][:, ::-1])
        keys = list(dict.fromkeys([*results.get("seg_fields", []), "gt_seg_map"]))
        for key in keys:
            if results.get(key) is not None:
                results[key] = swap_left_right(np.ascontiguousarray(results[key][:, ::-1]), self.pairs)
        return results

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(prob={self.prob}, pairs={self.pairs})"

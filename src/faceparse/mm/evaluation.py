"""``FaceParseMetric``: mmseg's IoUMetric plus the challenge's F-score, as the project scores it.

Validation during training logs ``mIoU`` (mmseg's, over the 19 classes) and, from the
same summed areas, ``mF1`` (mean F1 over the 18 foreground classes, the project's
default F-score) and ``mF1_19`` (over all 19 classes, background included): F1 of a
class is ``2 |pred ∩ truth| / (|pred| + |truth|)`` over the whole split's pixels
(dataset-level, ignore pixels left out), and a class absent from both prediction and
truth is left out of the mean - exactly :func:`faceparse.predict.metrics.scores`.
"""

from __future__ import annotations

import numpy as np
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS


def mean_f1(intersect: np.ndarray, pred: np.ndarray, truth: np.ndarray, background: int | None = 0) -> float:
    """Mean F1 in percent over the classes (without ``background``), absent classes left out."""
    total = pred + truth
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(total > 0, 2 * intersect / total, np.nan)
    if background is not None:
        f1 = np.delete(f1, background)
    return float(np.round(np.nanmean(f1) * 100, 2)) if np.isfinite(f1).any() else float("nan")


@METRICS.register_module()
class FaceParseMetric(IoUMetric):
    """IoUMetric's results plus ``mF1`` (18 foreground classes) and ``mF1_19`` (all 19)."""

    def compute_metrics(self, results: list) -> dict[str, float]:
        metrics = super().compute_metrics(results)
        if not results:
            return metrics
        intersect, _, pred, truth = (np.asarray(sum(r[k] for r in results), dtype=np.float64) for k in range(4))
        metrics["mF1"] = mean_f1(intersect, pred, truth, background=0)
        metrics["mF1_19"] = mean_f1(intersect, pred, truth, background=None)
        return metrics

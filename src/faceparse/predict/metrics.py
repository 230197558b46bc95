"""Segmentation metrics from one confusion matrix summed over a whole split.

Conventions (the ones of the face-parsing literature, e.g. EHANet, FaRL, SegFace):

- ``confusion[t, p]`` counts pixels of true class ``t`` predicted as ``p``,
  summed over every image of the split (not averaged per image). Ground-truth
  pixels outside 0..18 (the ignore value 255, see faceparse.labels) are not counted.
- Per class k: ``IoU = TP / (TP + FP + FN)``, ``F1 = 2 TP / (2 TP + FP + FN)``
  with TP, FP, FN from that summed matrix.
- A class absent from both the ground truth and the prediction (TP + FP + FN
  = 0) has no defined score: NaN in the arrays, ``null`` in JSON, and it is
  left out of the means (as mmseg's ``IoUMetric`` does with ``nanmean``).
- ``mIoU``: mean over the 19 classes (background included), as the challenge
  and mmseg score it. ``mF1``: mean over the 18 foreground classes
  (background excluded), as published CelebAMask-HQ F1 results are reported;
  ``mF1_19``: mean over all 19 - the later editions' F-score scorer is not
  public, so both variants are reported (the training's validation logs both,
  :class:`faceparse.mm.evaluation.FaceParseMetric`).
- Scores are percentages (0..100), like mmseg's ``IoUMetric`` and the
  ``mIoU`` it logs during training (what ``best.json`` holds).
"""

from __future__ import annotations

import math

import numpy as np

from faceparse.labels import CLASSES, NUM_CLASSES

__all__ = ["confusion_matrix", "scores", "scores_to_json", "metrics_table_html"]


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """(num_classes, num_classes) int64 counts of (truth, prediction) pixel pairs.

    Pixels whose truth is outside ``0..num_classes-1`` are ignored; a
    prediction outside that range is an error.
    """
    truth = np.asarray(truth).ravel().astype(np.int64)
    pred = np.asarray(pred).ravel().astype(np.int64)
    if truth.shape != pred.shape:
        raise ValueError(f"confusion_matrix: {truth.size} truth pixels vs {pred.size} predicted")
    valid = (truth >= 0) & (truth < num_classes)
    if pred.size and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f"confusion_matrix: predictions outside 0..{num_classes - 1}")
    counts = np.bincount(truth[valid] * num_classes + pred[valid], minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def scores(confusion: np.ndarray, background: int = 0) -> dict:
    """IoU and F1 per class and their means from a summed confusion matrix.

    Returns ``{"mIoU", "mF1", "mF1_19", "aAcc", "IoU": array, "F1": array, "pixels"}``;
    the arrays hold NaN for classes absent from truth and prediction alike.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"scores: confusion must be square, got shape {confusion.shape}")
    tp = np.diag(confusion)
    truth = confusion.sum(axis=1)  # TP + FN
    predicted = confusion.sum(axis=0)  # TP + FP
    union = truth + predicted - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        f1 = np.where(truth + predicted > 0, 2 * tp / (truth + predicted), np.nan)
    foreground = np.ones(len(tp), dtype=bool)
    foreground[background] = False
    total = confusion.sum()
    return {
        "mIoU": _nanmean(iou) * 100,
        "mF1": _nanmean(f1[foreground]) * 100,
        "mF1_19": _nanmean(f1) * 100,
        "aAcc": (tp.sum() / total * 100) if total else math.nan,
        "IoU": iou * 100,
        "F1": f1 * 100,
        "pixels": int(total),
    }


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


def _json_float(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def scores_to_json(confusion: np.ndarray, classes=CLASSES) -> dict:
    """The JSON form of :func:`scores` (NaN -> null), with the confusion matrix."""
    result = scores(confusion)
    confusion = np.asarray(confusion)
    if len(classes) != confusion.shape[0]:
        raise ValueError(f"scores_to_json: {len(classes)} class names for a {confusion.shape[0]}-class matrix")
    return {
        "mIoU": _json_float(result["mIoU"]),
        "mF1": _json_float(result["mF1"]),
        "mF1_19": _json_float(result["mF1_19"]),
        "aAcc": _json_float(result["aAcc"]),
        "IoU": {name: _json_float(v) for name, v in zip(classes, result["IoU"])},
        "F1": {name: _json_float(v) for name, v in zip(classes, result["F1"])},
        "pixels": result["pixels"],
        "confusion": confusion.astype(np.int64).tolist(),
    }


def _fmt(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value:.2f}"


def metrics_table_html(metrics: dict, title: str = "Validation scores") -> str:
    """A standalone HTML table of ``val_metrics.json``: per class IoU/F1, no TTA vs TTA."""
    plain, tta = metrics["no_tta"], metrics["tta"]
    cfg = metrics.get("tta_config", {})
    rows = []
    for name in plain["IoU"]:
        rows.append(
            f"<tr><td>{name}</td><td>{_fmt(plain['IoU'][name])}</td><td>{_fmt(tta['IoU'][name])}</td>"
            f"<td>{_fmt(plain['F1'][name])}</td><td>{_fmt(tta['F1'][name])}</td></tr>"
        )
    rows.append(
        f"<tr class='mean'><td>mean</td><td>{_fmt(plain['mIoU'])}</td><td>{_fmt(tta['mIoU'])}</td>"
        f"<td>{_fmt(plain['mF1'])}</td><td>{_fmt(tta['mF1'])}</td></tr>"
    )
    body = "\n".join(rows)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; }} table {{ border-collapse: collapse; }}
td, th {{ padding: 2px 10px; text-align: right; border-bottom: 1px solid #ddd; }}
td:first-child, th:first-child {{ text-align: left; }} tr.mean td {{ font-weight: bold; }}
</style></head><body>
<h3>{title}</h3>
<p>{metrics.get("images", "?")} images of the {metrics.get("split", "val")} split; scores in percent from one
confusion matrix over the split. mIoU: 19 classes; mF1: 18 foreground classes (background excluded).
TTA: scales {cfg.get("scales")}, flip {cfg.get("flip")} (left/right channels swapped). &ndash;: class absent
from truth and prediction.</p>
<table><tr><th>class</th><th>IoU</th><th>IoU (TTA)</th><th>F1</th><th>F1 (TTA)</th></tr>
{body}
</table></body></html>
"""

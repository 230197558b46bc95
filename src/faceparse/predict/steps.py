"""The evaluate and predict steps, one path for a model and an ensemble (a model is an ensemble of one).

:func:`evaluate` scores a split without and with face-aware TTA, writes the TTA masks and
``val_metrics.json``; :func:`predict` writes the TTA masks of a split. Both load the
members once (:class:`faceparse.predict.models.Ensemble`) and stream the split through
:func:`faceparse.predict.runner.run_views`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from faceparse.labels import CLASSES, LR_PAIRS
from faceparse.predict.metrics import metrics_table_html, scores_to_json
from faceparse.predict.models import Ensemble, Member, combined_train_on_val, read_member
from faceparse.predict.postprocess import postprocess as clean, requested
from faceparse.predict.runner import run_views, unscored, use_threads
from faceparse.records import split_files, write_json

log = logging.getLogger(__name__)

__all__ = ["metrics_record", "write_metrics", "evaluate", "predict", "read_members"]


def postprocess_fn(settings: Mapping | None) -> Callable[[np.ndarray], np.ndarray] | None:
    """The clean-up ``settings`` (the config's ``postprocess``) ask for, or None when they ask for none."""
    wanted = requested(settings)
    return functools.partial(clean, **wanted) if wanted else None


def _tta_config(scales: Sequence[float], flip: bool) -> dict:
    return {
        "model": "FaceSegTTAModel",
        "scales": [float(s) for s in scales],
        "flip": bool(flip),
        "swap_pairs": [list(p) for p in LR_PAIRS] if flip else [],
        "merge": "mean of softmax probabilities (flipped predictions un-flipped and left/right channels swapped)",
    }


def metrics_record(
    plain: dict,
    tta: dict,
    *,
    split: str,
    images: int,
    scales: Sequence[float],
    flip: bool,
    train_on_val: bool | None,
    source: dict,
    device: str,
    batch_size: int,
    postprocess: Mapping | None = None,
) -> dict:
    """The ``val_metrics.json`` record of a model or an ensemble: scores without and with TTA
    (results of :func:`run_views`; the TTA masks after ``postprocess``, when it asks for any),
    the TTA used, and ``source`` (what predicted: a model's ``config`` and ``checkpoint``, or an
    ensemble's ``members``)."""
    return {
        "no_tta": scores_to_json(plain["confusion"], CLASSES),
        "tta": scores_to_json(tta["confusion"], CLASSES),
        "tta_config": _tta_config(scales, flip),
        "postprocess": requested(postprocess),
        "split": split,
        "train_on_val": train_on_val,
        "images": images,
        **source,
        "seconds": {"no_tta": plain["seconds"], "tta": tta["seconds"]},
        "device": device,
        "batch_size": batch_size,
        "units": "percent; null = class absent from truth and prediction (left out of the means)",
    }


def write_metrics(metrics: dict, metrics_json: str | Path, table_html: str | Path | None = None) -> None:
    """``val_metrics.json`` (and optionally its HTML table), and the scores in the log."""
    write_json(metrics_json, metrics)
    if table_html is not None:
        Path(table_html).write_text(metrics_table_html(metrics, f"{metrics['split']} scores"))
    log.info(
        "%s mIoU %.2f -> %.2f with TTA; mF1 %.2f -> %.2f",
        metrics["split"],
        metrics["no_tta"]["mIoU"],
        metrics["tta"]["mIoU"],
        metrics["no_tta"]["mF1"],
        metrics["tta"]["mF1"],
    )


def read_members(names: Sequence[str], best_jsons: Sequence[str], train_jsons: Sequence[str]) -> list[Member]:
    """The members a rule names, from their best.json and train.json records (in that order)."""
    return [read_member(n, b, t) for n, b, t in zip(names, best_jsons, train_jsons, strict=True)]


def evaluate(
    members: Sequence[Member],
    validation_json: str | Path,
    *,
    pred_dir: str | Path,
    metrics_json: str | Path,
    scales: Sequence[float],
    flip: bool,
    weights: Sequence[float] | None = None,
    as_ensemble: bool = False,
    table_html: str | Path | None = None,
    split: str = "val",
    batch_size: int = 8,
    threads: int = 2,
    device: str | None = None,
    postprocess: Mapping | None = None,
) -> dict:
    """Score ``split`` without and with TTA; write the TTA masks and ``val_metrics.json``.
    ``postprocess`` (the config's) cleans the TTA masks before they are scored and written.

    ``threads``: data-loader workers (and torch's CPU threads when on the CPU). The record says
    whether any member trained on val (its val scores are then not held out; None: unknown).
    """
    files = split_files(validation_json, split, need_masks=True)
    ensemble = Ensemble(members, weights, device, as_ensemble=as_ensemble)
    common = dict(device=ensemble.device, batch_size=batch_size, workers=use_threads(ensemble.models[0], threads))
    log.info("%s: %d images, %s, no TTA", split, len(files.names), [m.name for m in members])
    plain = run_views(ensemble.labels(tta=False), files, ensemble.pipelines(tta=False), **common)
    log.info("%s: TTA scales=%s flip=%s", split, list(scales), flip)
    tta = run_views(
        ensemble.labels(tta=True),
        files,
        ensemble.pipelines(True, scales, flip),
        out_dir=pred_dir,
        postprocess=postprocess_fn(postprocess),
        **common,
    )
    metrics = metrics_record(
        plain,
        tta,
        split=split,
        images=len(files.names),
        scales=scales,
        flip=flip,
        train_on_val=combined_train_on_val(members),
        source=ensemble.describe(),
        device=str(ensemble.device),
        batch_size=batch_size,
        postprocess=postprocess,
    )
    write_metrics(metrics, metrics_json, table_html)
    return metrics


def predict(
    members: Sequence[Member],
    validation_json: str | Path,
    *,
    pred_dir: str | Path,
    scales: Sequence[float],
    flip: bool,
    weights: Sequence[float] | None = None,
    split: str = "test",
    batch_size: int = 8,
    threads: int = 2,
    device: str | None = None,
    postprocess: Mapping | None = None,
) -> dict:
    """Write TTA masks ``{pred_dir}/{name}.png`` for every image of ``split`` (cleaned by
    ``postprocess``, the config's, when it asks for any)."""
    files = unscored(split_files(validation_json, split))
    ensemble = Ensemble(members, weights, device)
    result = run_views(
        ensemble.labels(tta=True),
        files,
        ensemble.pipelines(True, scales, flip),
        out_dir=pred_dir,
        device=ensemble.device,
        batch_size=batch_size,
        workers=use_threads(ensemble.models[0], threads),
        postprocess=postprocess_fn(postprocess),
    )
    return {
        "split": split,
        "images": result["images"],
        "seconds": result["seconds"],
        "tta_config": _tta_config(scales, flip),
    }

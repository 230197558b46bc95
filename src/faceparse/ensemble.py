"""Ensembles: several selected models, their TTA class probabilities averaged per image.

An ensemble is configured as ``ensembles: {name: {models: [a, b], weights: [2, 1]}}``
(weights optional, normalised to sum 1). Every member runs its own test pipeline
(its own input size) on the same batch of images; each member's prediction is the
face-aware TTA of :class:`faceparse.mm.tta.FaceSegTTAModel` (scales and flip as
configured, flipped views with left/right channels swapped back) kept as
probabilities, and the ensemble's label is the argmax of their weighted mean. The
no-TTA score averages each member's softmax at its test size. One batch is in
memory at a time, through all members (:func:`faceparse.inference.run_views`), so
memory does not grow with the split.

An ensemble of one model predicts exactly what the model predicts with TTA (its
probabilities times a weight of 1.0, the same argmax).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from faceparse.records import TrainSummary, split_files

if TYPE_CHECKING:
    from faceparse.inference import LabelFn

# torch and mmseg are imported where models run: the workflow imports check_ensembles
# when it parses the config, for every snakemake call.

log = logging.getLogger(__name__)

__all__ = ["check_ensembles", "normalised_weights", "Member", "read_member", "Ensemble", "combined_train_on_val",
           "evaluate_ensemble", "predict_ensemble"]


def check_ensembles(ensembles: Mapping[str, Mapping], models: Iterable[str]) -> None:
    """Refuse, with one message naming every problem, ensembles the schema cannot check:
    members that are not configured models, a name that is also a model's (their results
    and zips would collide), and a weight list of the wrong length."""
    models = list(models)
    problems = []
    for name, spec in ensembles.items():
        members = list(spec.get("models", []))
        unknown = [m for m in members if m not in models]
        if unknown:
            problems.append(f"ensembles.{name}.models: {unknown} not among the configured models {models}")
        if name in models:
            problems.append(f"ensembles.{name}: the name is also a model's (results/submission/{name}.zip "
                            "would be both); rename the ensemble")
        weights = spec.get("weights")
        if weights is not None and len(weights) != len(members):
            problems.append(f"ensembles.{name}.weights: {len(weights)} weights for {len(members)} models")
    if problems:
        raise ValueError("config: " + "; ".join(problems))


def normalised_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """``weights`` divided by their sum (equal weights when None)."""
    weights = [1.0] * count if weights is None else [float(w) for w in weights]
    if len(weights) != count or not all(w > 0 for w in weights):
        raise ValueError(f"ensemble weights must be {count} positive numbers, got {weights}")
    total = sum(weights)
    return [w / total for w in weights]


@dataclass(frozen=True)
class Member:
    """A selected model: its name, dumped config, checkpoint and whether it saw val in training."""

    name: str
    config: str
    checkpoint: str
    train_on_val: bool | None


def read_member(name: str, best_json: str | Path, train_json: str | Path) -> Member:
    from faceparse.inference import model_paths

    config, checkpoint = model_paths(best_json, train_json)
    return Member(name, config, checkpoint, TrainSummary.read(train_json).train_on_val)


def combined_train_on_val(members: Sequence[Member]) -> bool | None:
    """True when any member trained on val (the ensemble's val score is then not held out),
    False when none did, None when that is unknown for some and true for none."""
    flags = [m.train_on_val for m in members]
    if any(f is True for f in flags):
        return True
    return None if any(f is None for f in flags) else False


class Ensemble:
    """The members' models, loaded once, and the labelling functions over their views."""

    def __init__(self, members: Sequence[Member], weights: Sequence[float] | None, device: str | None = None):
        if not members:
            raise ValueError("an ensemble needs at least one member")
        from faceparse.inference import config_test_pipeline, load_model, tta_model, without_annotations

        self.members = list(members)
        self.weights = normalised_weights(weights, len(members))
        loaded = [load_model(m.config, m.checkpoint, device) for m in members]
        self.models = [model for model, _ in loaded]
        self.tta_models = [tta_model(model, keep_probs=True) for model in self.models]
        self.base_pipelines = [without_annotations(config_test_pipeline(cfg)) for _, cfg in loaded]
        self.device = next(self.models[0].parameters()).device

    def pipelines(self, tta: bool, scales: Sequence[float] = (1.0,), flip: bool = False) -> list[list[dict]]:
        """One pipeline per member: its test pipeline, or its ``TestTimeAug`` version."""
        if not tta:
            return self.base_pipelines
        from faceparse.mm.tta import tta_pipeline

        return [tta_pipeline(p, scales, flip, with_annotations=False) for p in self.base_pipelines]

    def labels(self, tta: bool) -> LabelFn:
        """(views, one per member) -> argmax of the weighted mean of the members' probabilities."""
        import torch

        models = self.tta_models if tta else self.models

        def label(views: list) -> torch.Tensor:
            total = None
            for model, weight, view in zip(models, self.weights, views):
                samples = model.test_step(view)
                probs = torch.stack([s.seg_logits.data for s in samples])
                if not tta:
                    probs = probs.softmax(dim=1)  # a segmentor's seg_logits are logits
                total = probs * weight if total is None else total.add_(probs, alpha=weight)
            return total.argmax(dim=1)

        return label

    def describe(self) -> dict:
        """What predicted, for val_metrics.json: the members with their weights."""
        return {"ensemble": {"members": [{"model": m.name, "config": m.config, "checkpoint": m.checkpoint,
                                          "weight": w} for m, w in zip(self.members, self.weights)]}}


def evaluate_ensemble(members: Sequence[Member], weights: Sequence[float] | None, validation_json: str | Path, *,
                      pred_dir: str | Path, metrics_json: str | Path, scales: Sequence[float], flip: bool,
                      table_html: str | Path | None = None, split: str = "val", batch_size: int = 8,
                      threads: int = 2, device: str | None = None) -> dict:
    """Score ``split`` without and with TTA; write the TTA masks and ``val_metrics.json``
    (the record a single model's evaluate writes, with the members in place of a checkpoint)."""
    from faceparse.inference import metrics_record, run_views, use_threads, write_metrics

    files = split_files(validation_json, split, need_masks=True)
    ensemble = Ensemble(members, weights, device)
    workers = use_threads(ensemble.models[0], threads)
    common = dict(device=ensemble.device, batch_size=batch_size, workers=workers)
    log.info("%s: %d images, %d members %s, no TTA", split, len(files.names), len(members),
             [m.name for m in members])
    plain = run_views(ensemble.labels(tta=False), files, ensemble.pipelines(tta=False), **common)
    log.info("%s: TTA scales=%s flip=%s", split, list(scales), flip)
    tta = run_views(ensemble.labels(tta=True), files, ensemble.pipelines(True, scales, flip), out_dir=pred_dir,
                    **common)
    metrics = metrics_record(plain, tta, split=split, images=len(files.names), scales=scales, flip=flip,
                             train_on_val=combined_train_on_val(members), source=ensemble.describe(),
                             device=str(ensemble.device), batch_size=batch_size)
    write_metrics(metrics, metrics_json, table_html)
    return metrics


def predict_ensemble(members: Sequence[Member], weights: Sequence[float] | None, validation_json: str | Path, *,
                     pred_dir: str | Path, scales: Sequence[float], flip: bool, split: str = "test",
                     batch_size: int = 8, threads: int = 2, device: str | None = None) -> dict:
    """Write the ensemble's TTA masks ``{pred_dir}/{name}.png`` for every image of ``split``."""
    from faceparse.inference import run_views, unscored, use_threads

    files = unscored(split_files(validation_json, split))
    ensemble = Ensemble(members, weights, device)
    workers = use_threads(ensemble.models[0], threads)
    result = run_views(ensemble.labels(tta=True), files, ensemble.pipelines(True, scales, flip), out_dir=pred_dir,
                       device=ensemble.device, batch_size=batch_size, workers=workers)
    return {"split": split, "images": result["images"], "seconds": result["seconds"]}

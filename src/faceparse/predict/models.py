"""The members a predict step runs: selected checkpoints loaded as mmseg models, and an ensemble of them.

A model is an ensemble of one: :class:`Ensemble` loads one or several :class:`Member`
(a dumped config and a checkpoint), and labels a batch with the argmax of their
weighted mean class probabilities - for one member, exactly its own prediction
(mmseg's ``pred_sem_seg``, or the TTA model's argmax). Every member runs its own test
pipeline (its own input size) on the same images; with TTA each member's prediction is
the face-aware TTA of :class:`faceparse.mm.tta.FaceSegTTAModel` kept as probabilities.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmseg.apis import init_model

import faceparse.mm  # noqa: F401 - registers faceparse's mmseg modules, allow-lists checkpoint globals
from faceparse.mm.backbone import pretrained_off
from faceparse.mm.pipelines import config_test_pipeline, without_annotations
from faceparse.mm.tta import FaceSegTTAModel, tta_pipeline
from faceparse.predict.runner import LabelFn
from faceparse.records import Selection, TrainSummary

__all__ = [
    "default_device",
    "load_model",
    "CheckpointMismatch",
    "tta_model",
    "model_paths",
    "Member",
    "read_member",
    "normalised_weights",
    "combined_train_on_val",
    "Ensemble",
]


def default_device() -> str:
    return "cuda:0" if torch.cuda.is_available() else "cpu"


def load_model(config: str | Path, checkpoint: str | Path | None, device: str | None = None):
    """(model, cfg): the segmentor of ``config`` with ``checkpoint`` loaded, in eval mode.

    The model is built with every pretrained loading switched off
    (:func:`faceparse.mm.backbone.pretrained_off`): the checkpoint holds all
    weights, so inference needs neither the hub nor the training's local
    backbone file. The returned ``cfg`` is the file's, unchanged.

    The checkpoint must fit the network exactly (mmseg's ``init_model`` loads non-strictly:
    a network whose code changed since training would keep random weights where the names
    or shapes differ and predict noise without a word). Raises :class:`CheckpointMismatch`.
    """
    cfg = Config.fromfile(str(config))
    build_cfg = copy.deepcopy(cfg)
    build_cfg.model = pretrained_off(cfg.model)
    model = init_model(build_cfg, None, device="cpu")
    if checkpoint:
        try:
            loaded = load_checkpoint(model, str(checkpoint), map_location="cpu", strict=True, logger="silent")
        except RuntimeError as err:
            raise CheckpointMismatch(
                f"{checkpoint} does not fit the network of {config} (was the network's code "
                f"changed after training?): {err}"
            ) from None
        meta = loaded.get("meta", {}).get("dataset_meta")
        if meta:
            model.dataset_meta = meta
    model.to(device or default_device())
    model.eval()
    return model, cfg


class CheckpointMismatch(RuntimeError):
    """A checkpoint's weights do not match the network built from its config."""


def tta_model(model, **kwargs):
    """Wrap a segmentor in :class:`faceparse.mm.tta.FaceSegTTAModel`."""
    return FaceSegTTAModel(module=model, **kwargs).eval()


def model_paths(best_json: str | Path, train_json: str | Path) -> tuple[str, str]:
    """(config, checkpoint) of a trained model from its train.json and best.json records."""
    checkpoint = Selection.read(best_json).checkpoint
    config = TrainSummary.read(train_json).config
    if not Path(config).exists():
        raise FileNotFoundError(f"{train_json}: dumped config {config} is missing")
    if not Path(checkpoint).exists():
        raise FileNotFoundError(f"{best_json}: checkpoint {checkpoint} is missing")
    return config, checkpoint


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
    train_on_val: bool | None = None


def read_member(name: str, best_json: str | Path, train_json: str | Path) -> Member:
    """A trained model as a member, from its best.json and train.json records."""
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
    """The members' models, loaded once, and the labelling functions over their views.

    ``as_ensemble`` says how :meth:`describe` records what predicted: a model (its
    config and checkpoint) or an ensemble (its members and weights)."""

    def __init__(
        self,
        members: Sequence[Member],
        weights: Sequence[float] | None = None,
        device: str | None = None,
        as_ensemble: bool = False,
    ):
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.as_ensemble = as_ensemble or len(members) > 1
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
        return [tta_pipeline(p, scales, flip, with_annotations=False) for p in self.base_pipelines]

    def labels(self, tta: bool) -> LabelFn:
        """(views, one per member) -> argmax of the weighted mean of the members' probabilities;
        for one member its own labels (no weighting: mmseg's prediction, unchanged)."""
        models = self.tta_models if tta else self.models
        if len(models) == 1:
            return lambda views: _own_labels(models[0], views[0])

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
        """What predicted, for val_metrics.json: a model's config and checkpoint, or the
        ensemble's members with their weights."""
        if not self.as_ensemble:
            return {"config": self.members[0].config, "checkpoint": self.members[0].checkpoint}
        return {
            "ensemble": {
                "members": [
                    {"model": m.name, "config": m.config, "checkpoint": m.checkpoint, "weight": w}
                    for m, w in zip(self.members, self.weights)
                ]
            }
        }


def _own_labels(model, view) -> torch.Tensor:
    """A single model's labels for one collated view: mmseg's ``pred_sem_seg`` (for the TTA
    model, the argmax of its merged probabilities)."""
    return torch.stack([s.pred_sem_seg.data[0] for s in model.test_step(view)])

"""A training run's identity: exactly what determines its weights.

:func:`training_fingerprint` hashes the inputs that decide the weights: the
resolved config without paths, logging and run length; the index entries of the
splits the model trains on (train, and val only with ``train_on_val``: adding test
images, or val images when val is held out, changes nothing), stats and the flip
manifest (their content, not where they are); ``train_on_val``; GPUs and
processes. :mod:`faceparse.train.runs` keeps every run under a folder named by it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path

from faceparse.records import read_index, read_json

log = logging.getLogger(__name__)


# What does not change the weights a run produces: where things are, how often
# it logs, validates and saves, what inference uses, and how long it runs (a
# longer run resumes; ResumeScheduleHook stretches the schedule ends that
# follow max_iters; a warm-up's end is part of the recipe).
_IRRELEVANT_TOP = (
    "work_dir",
    "resume",
    "launcher",
    "val_dataloader",
    "test_dataloader",
    "val_evaluator",
    "test_evaluator",
    "val_cfg",
    "test_cfg",
    "test_pipeline",
    "tta_model",
    "tta_pipeline",
    "visualizer",
    "vis_backends",
    "log_level",
    "log_processor",
)
_IRRELEVANT_HOOKS = ("timer", "logger", "checkpoint", "visualization")
_PATH_KEYS = ("data_root", "ann_file", "data_prefix", "root", "image_dir", "mask_dir")
_SCHEDULE_ENDS = ("end", "total_iters", "T_max")


def _without(node, keys: tuple[str, ...]):
    """A copy of a nested dict/list without ``keys`` at any depth."""
    if isinstance(node, Mapping):
        return {k: _without(v, keys) for k, v in node.items() if k not in keys}
    if isinstance(node, list | tuple):
        return [_without(v, keys) for v in node]
    return node


def weight_relevant_config(cfg) -> dict:
    """The resolved config without what cannot change the trained weights (see ``_IRRELEVANT_TOP``)."""
    d = json.loads(json.dumps(cfg.to_dict(), default=str))
    for key in _IRRELEVANT_TOP:
        d.pop(key, None)
    for key in _IRRELEVANT_HOOKS:
        d.get("default_hooks", {}).pop(key, None)
    max_iters = d.get("train_cfg", {}).pop("max_iters", None)
    d.get("train_cfg", {}).pop("val_interval", None)
    schedulers = d.get("param_scheduler") or []
    for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
        for key in _SCHEDULE_ENDS:
            if key in scheduler and scheduler[key] == max_iters:
                scheduler[key] = "max_iters"
    loader = d.get("train_dataloader", {})
    for key in ("num_workers", "persistent_workers"):
        loader.pop(key, None)
    d["train_dataloader"] = _without(loader, _PATH_KEYS)
    return d


def training_splits(train_on_val: bool) -> tuple[str, ...]:
    """The index splits a run trains on."""
    return ("train", "val") if train_on_val else ("train",)


def scoped_inputs(inputs: Mapping) -> dict:
    """``inputs`` with the data index cut to the splits the run trains on.

    Fingerprints written before the scope existed recorded every split (and the
    index's layout); scoping their inputs gives the fingerprint the same run has now.
    """
    scoped = dict(inputs)
    splits = (inputs.get("data") or {}).get("splits", {})
    scoped["data"] = {
        "splits": {s: splits[s] for s in training_splits(bool(inputs.get("train_on_val"))) if s in splits}
    }
    return scoped


def fingerprint_of(inputs: Mapping) -> dict:
    """``{"sha256", "inputs"}`` of scoped ``inputs``."""
    inputs = scoped_inputs(inputs)
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "inputs": inputs}


def training_fingerprint(
    cfg,
    validation: str | Path,
    stats: str | Path,
    flip: str | Path | None,
    train_on_val: bool,
    gpus: int,
    processes: int,
) -> dict:
    """What determines a run's weights, and its sha256: the resolved config (without
    paths, logging and length), the index entries of the training splits, stats and
    flip manifest (their content, not where they are), train_on_val and the GPUs/processes."""
    return fingerprint_of(
        {
            "config": weight_relevant_config(cfg),
            "data": _without(read_index(validation), _PATH_KEYS),
            "stats": read_json(stats),
            "flip": _without(read_json(flip), _PATH_KEYS) if flip is not None else None,
            "train_on_val": bool(train_on_val),
            "gpus": int(gpus),
            "processes": int(processes),
        }
    )


def _flat(node, prefix: str = "") -> dict[str, object]:
    if isinstance(node, Mapping):
        out: dict[str, object] = {}
        for k, v in node.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(node, list) and any(isinstance(v, Mapping | list) for v in node):
        out = {f"{prefix}.len": len(node)}
        for i, v in enumerate(node):
            out.update(_flat(v, f"{prefix}.{i}"))
        return out
    return {prefix: node}


def fingerprint_changes(old: Mapping, new: Mapping, limit: int = 8) -> list[str]:
    """The dotted keys whose values differ between two fingerprints' inputs (at most ``limit``)."""
    a, b = _flat(old.get("inputs", {})), _flat(new.get("inputs", {}))
    changed = sorted(k for k in a.keys() | b.keys() if a.get(k, ...) != b.get(k, ...))
    return changed[:limit] + ([f"... {len(changed) - limit} more"] if len(changed) > limit else [])

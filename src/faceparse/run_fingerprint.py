"""A training run's identity: what determines its weights, and what to do with a run of other inputs.

:func:`training_fingerprint` hashes the inputs that decide the weights (the
resolved config without paths, logging and run length; the content of the data
index, stats and flip manifest; ``train_on_val``; GPUs and processes). The train
step records it in the work_dir (``fingerprint.json``); a work_dir whose run came
from other inputs is moved to ``{work_dir}.previous`` (:func:`set_aside_stale_run`)
instead of being resumed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path

from faceparse.records import read_index, read_json

log = logging.getLogger(__name__)

FINGERPRINT = "fingerprint.json"

# What does not change the weights a run produces: where things are, how often
# it logs, validates and saves, what inference uses, and how long it runs (a
# longer run resumes; ResumeScheduleHook stretches the schedule ends that
# follow max_iters; a warm-up's end is part of the recipe).
_IRRELEVANT_TOP = ("work_dir", "resume", "launcher", "val_dataloader", "test_dataloader", "val_evaluator",
                   "test_evaluator", "val_cfg", "test_cfg", "test_pipeline", "tta_model", "tta_pipeline",
                   "visualizer", "vis_backends", "log_level", "log_processor")
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


def training_fingerprint(cfg, validation: str | Path, stats: str | Path, flip: str | Path | None,
                         train_on_val: bool, gpus: int, processes: int) -> dict:
    """What determines a run's weights, and its sha256: the resolved config (without
    paths, logging and length), the dataset index, stats and flip manifest (their
    content, not where they are), train_on_val and the GPUs/processes."""
    inputs = {
        "config": weight_relevant_config(cfg),
        "data": _without(read_index(validation), _PATH_KEYS),
        "stats": read_json(stats),
        "flip": _without(read_json(flip), _PATH_KEYS) if flip is not None else None,
        "train_on_val": bool(train_on_val),
        "gpus": int(gpus),
        "processes": int(processes),
    }
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "inputs": inputs}


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


def _has_run(work_dir: Path) -> bool:
    return any(work_dir.glob("*.pth")) or any(work_dir.glob("*/vis_data/scalars.json"))


def set_aside_stale_run(work_dir: str | Path, fingerprint: Mapping) -> Path | None:
    """Move a work_dir trained from other inputs to ``{work_dir}.previous`` (replacing an older one).

    Returns where it went, or None when the work_dir has no run or its recorded
    fingerprint matches (then training resumes there).
    """
    work_dir = Path(work_dir)
    if not work_dir.is_dir() or not _has_run(work_dir):
        return None
    recorded_path = work_dir / FINGERPRINT
    if recorded_path.is_file():
        recorded = read_json(recorded_path)
        if recorded.get("sha256") == fingerprint["sha256"]:
            return None
        why = "its inputs changed: " + ", ".join(fingerprint_changes(recorded, fingerprint))
    else:
        why = f"it has no {FINGERPRINT}, so what it was trained from is unknown"
    previous = work_dir.with_name(work_dir.name + ".previous")
    if previous.exists():
        shutil.rmtree(previous)
    work_dir.rename(previous)
    log.warning("%s: not resuming, %s; moved it to %s (the generation before is deleted) and training "
                "from iteration 0", work_dir, why, previous)
    return previous

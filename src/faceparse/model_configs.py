"""Model config files as the workflow sees them before any job runs (mmengine's ``Config`` only: no torch).

- :func:`config_sources`: the config file and every file it inherits, through ``_base_``
  recursively as mmengine resolves them, so an edit to any of them reruns training;
- :func:`load_config`: the config with a model's ``overrides`` checked and merged, and the lr
  schedule fitted to a changed ``max_iters`` (what :func:`faceparse.mm.config.build_config`
  starts from);
- :func:`check_models`: every model of the workflow config loaded that way, its
  ``select_iter`` checked, all problems in one message, when the workflow starts.

An override key must name a value the resolved config has (list items by index,
``param_scheduler.1.end``), or be one of :data:`NEW_KEYS`, arguments mmengine and
mmseg accept that configs usually leave out. Its value must keep the kind of the one it
replaces (a number for a number, text for text, a list for a list or tuple, a mapping for
a mapping; ``None`` either way), except for the keys of :data:`ANY_TYPE_LEAVES`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: mmengine takes a fifth of a second (faceparse.model_facts)
    from mmengine.config import Config

__all__ = [
    "OVERRIDE_KEY",
    "NEW_KEYS",
    "config_sources",
    "override_problems",
    "load_config",
    "keep_iters_problems",
    "pretrained_sources",
    "model_problems",
    "refuse_model_problems",
    "check_models",
]

# A Config.merge_from_dict key: dotted names, list indices as numbers (param_scheduler.1.end).
OVERRIDE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.([A-Za-z_][A-Za-z0-9_]*|[0-9]+))*")

# Keys mmengine/mmseg accept that a config may lack: an override may add them.
NEW_KEYS = frozenset(
    {
        "default_hooks.checkpoint.max_keep_ckpts",
        "default_hooks.checkpoint.save_best",
        "default_hooks.checkpoint.rule",
        "default_hooks.checkpoint.save_last",
        "default_hooks.checkpoint.out_dir",
        "train_cfg.val_begin",
        "train_cfg.dynamic_intervals",
        "optim_wrapper.clip_grad",
        "optim_wrapper.accumulative_counts",
        "optim_wrapper.paramwise_cfg",
        "optim_wrapper.dtype",
        "optim_wrapper.loss_scale",
        "randomness.seed",
        "randomness.deterministic",
        "randomness.diff_rank_seed",
        "env_cfg.cudnn_benchmark",
        "model.backbone.pretrained_file",
        "model.backbone.init_cfg",
        "model.init_cfg",
        "train_dataloader.pin_memory",
        "val_dataloader.pin_memory",
    }
)
# Leaves whose value legitimately changes kind (AMP's 'dynamic' or a number, an optional mapping).
ANY_TYPE_LEAVES = frozenset({"loss_scale", "init_cfg", "clip_grad", "pretrained", "class_weight", "scale"})


def config_sources(config_file: str | Path) -> list[str]:
    """``config_file`` and every file it inherits (``_base_`` lists, recursively, relative or
    ``package::`` paths as mmengine resolves them), each once, in inheritance order."""
    from mmengine.config import Config

    found: list[str] = []

    def visit(path: str) -> None:
        resolved = str(Path(path).resolve())
        if resolved in found:
            return
        found.append(resolved)
        for base in Config._get_base_files(path):
            base_path, _scope = Config._get_cfg_path(base, path)
            visit(base_path)

    visit(str(config_file))
    return found


def _kind(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def _lookup_problem(cfg: Mapping, key: str) -> tuple[str | None, object]:
    """(problem, the value ``key`` names) in ``cfg``; a listed new key gives (None, None)."""
    parts = key.split(".")
    node: object = cfg
    for i, part in enumerate(parts):
        where = ".".join(parts[:i]) or "the config"
        if isinstance(node, list | tuple):
            if not part.isdigit() or int(part) >= len(node):
                return f"{key}: {where} is a list of {len(node)} entries; no entry {part}", None
            node = node[int(part)]
        elif isinstance(node, Mapping):
            if part not in node:
                if key in NEW_KEYS:
                    return None, None
                close = difflib.get_close_matches(part, [str(k) for k in node], n=1)
                hint = f" (did you mean {'.'.join([*parts[:i], close[0], *parts[i + 1 :]])}?)" if close else ""
                return f"{key}: the resolved config has no {'.'.join(parts[: i + 1])}{hint}", None
            node = node[part]
        else:
            return f"{key}: {where} is {_kind(node)} ({node!r}), not a mapping or list", None
    return None, node


def override_problems(cfg: Mapping, overrides: Mapping) -> list[str]:
    """One message per override whose key the config lacks or whose value changes kind."""
    problems = []
    for key, value in overrides.items():
        if not isinstance(key, str) or not OVERRIDE_KEY.fullmatch(key):
            problems.append(f"{key!r}: override keys are dotted names (train_cfg.max_iters, param_scheduler.1.end)")
            continue
        problem, old = _lookup_problem(cfg, key)
        if (
            problem is None
            and old is not None
            and value is not None
            and key.rsplit(".", 1)[-1] not in ANY_TYPE_LEAVES
            and _kind(old) != _kind(value)
        ):
            problem = f"{key}: {value!r} is {_kind(value)}, the config's value {old!r} is {_kind(old)}"
        if problem:
            problems.append(problem)
    return problems


def _fit_schedule(schedulers: list, old_max: int, new_max: int, overrides: Mapping) -> None:
    """Fit the lr schedule to a new ``max_iters``, in place.

    Schedules that ended at the old ``max_iters`` end at the new one; the others
    (warm-up) keep their length while they still fit, and are scaled with the
    whole schedule when they do not (a 30-iteration warm-up in a 12-iteration run).
    Entries given in ``overrides`` are left alone.
    """
    fits = all(s.get("end") == old_max or s.get("end", 0) < new_max for s in schedulers)
    factor = 1.0 if fits else new_max / old_max

    def fitted(value: int) -> int:
        return new_max if value == old_max else round(value * factor)

    for i, scheduler in enumerate(schedulers):
        if "begin" in scheduler and f"param_scheduler.{i}.begin" not in overrides:
            scheduler["begin"] = fitted(scheduler["begin"])
        if "end" in scheduler and f"param_scheduler.{i}.end" not in overrides:
            scheduler["end"] = max(scheduler.get("begin", 0) + 1, fitted(scheduler["end"]))


def load_config(config_file: str | Path, overrides: Mapping | None = None) -> Config:
    """The model's config with ``overrides`` checked and merged (``ValueError`` naming
    ``config_file`` and every problem) and the lr schedule fitted to a changed ``max_iters``."""
    cfg, problems = _checked_config(config_file, dict(overrides or {}))
    if problems:
        raise ValueError(f"{config_file}: " + "; ".join(problems))
    return cfg


def _checked_config(config_file: str | Path, overrides: Mapping) -> tuple[Config, list[str]]:
    """(the config with ``overrides`` merged, []) or (the config as read, the overrides' problems)."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(config_file), import_custom_modules=False)
    problems = override_problems(cfg.to_dict(), overrides)
    return (cfg, problems) if problems else (_merged(cfg, overrides), [])


def _merged(cfg: Config, overrides: Mapping) -> Config:
    """``cfg`` with (checked) ``overrides`` merged in and the schedule fitted to ``max_iters``."""
    max_iters = cfg.train_cfg.get("max_iters")
    if overrides:
        cfg.merge_from_dict(overrides)
    new_max = cfg.train_cfg.get("max_iters")
    if max_iters is not None and new_max != max_iters and "param_scheduler" not in overrides:
        _fit_schedule(cfg.get("param_scheduler") or [], max_iters, new_max, overrides)
    return cfg


def keep_iters_problems(cfg: Config, keep_iters: Iterable[int]) -> list[str]:
    """Why checkpoints of ``keep_iters`` (a pinned ``select_iter``) would never be saved or kept."""
    hook = cfg.get("default_hooks", {}).get("checkpoint")
    if not hook or hook.get("by_epoch", False):
        return ["select_iter needs an iteration-based default_hooks.checkpoint"]
    if hook.get("type") not in ("CheckpointHook", "PinnedCheckpointHook"):
        return [f"select_iter needs mmengine's CheckpointHook, not {hook.get('type')}"]
    max_iters, interval = int(cfg.train_cfg.max_iters), int(hook.get("interval", -1))
    problems = []
    for it in keep_iters:
        if it > max_iters:
            problems.append(
                f"select_iter={it} is after train_cfg.max_iters={max_iters}: that checkpoint "
                f"would never exist; lower select_iter or raise max_iters"
            )
        elif it != max_iters and (interval <= 0 or it % interval):
            problems.append(
                f"select_iter={it} is not a checkpoint iteration (default_hooks.checkpoint.interval="
                f"{interval}, max_iters={max_iters}); pin a multiple of the interval or override it"
            )
    return problems


def pretrained_sources(cfg: Mapping, where: str = "") -> list[str]:
    """Every place a config would load pretrained weights: ``pretrained`` set (True: timm's hub,
    a path: a file), ``pretrained_file``, an ``init_cfg`` of type ``Pretrained``, ``load_from``."""
    found = []
    if isinstance(cfg, Mapping):
        for key, value in cfg.items():
            path = f"{where}.{key}" if where else str(key)
            if key == "pretrained" and value not in (False, None, ""):
                found.append(f"{path}={value!r} ({'weights from the hub' if value is True else 'a weights file'})")
            elif key == "pretrained_file" and value:
                found.append(f"{path}={value!r} (a weights file)")
            elif key == "load_from" and value and not where:
                found.append(f"{path}={value!r} (a checkpoint to start from)")
            elif key == "init_cfg" and isinstance(value, Mapping) and value.get("type") == "Pretrained":
                found.append(f"{path}: Pretrained from {value.get('checkpoint')!r}")
            else:
                found += pretrained_sources(value, path)
    elif isinstance(cfg, list | tuple):
        for i, value in enumerate(cfg):
            found += pretrained_sources(value, f"{where}.{i}")
    return found


def model_problems(name: str, spec: Mapping, config_file: Path) -> list[str]:
    """Why the model ``name`` of the workflow config (its ``config_file``, ``overrides`` and
    ``select_iter``) cannot be trained, each naming where in the config it is; [] when it can."""
    if not config_file.is_file():
        return [f"models.{name}.config: {config_file} does not exist"]
    try:
        cfg, problems = _checked_config(config_file, dict(spec.get("overrides") or {}))
    except Exception as err:  # noqa: BLE001 - a config that does not load, for whatever reason
        return [f"models.{name}.config: {config_file} does not load ({type(err).__name__}: {err})"]
    if problems:
        return [f"models.{name}.overrides: {p}" for p in problems]
    select_iter = spec.get("select_iter")
    return (
        [f"models.{name}.select_iter: {config_file}: {p}" for p in keep_iters_problems(cfg, [select_iter])]
        if select_iter
        else []
    )


def check_models(models: Mapping[str, Mapping], base_dir: str | Path) -> None:
    """Load every model's config with its overrides and check its ``select_iter``; one
    ``ValueError`` listing every problem (config files relative to ``base_dir``)."""
    refuse_model_problems(
        [p for name, spec in models.items() for p in model_problems(name, spec, Path(base_dir) / spec["config"])]
    )


def refuse_model_problems(problems: list[str]) -> None:
    """One ``ValueError`` listing the models' problems (:func:`model_problems`), if there are any."""
    if problems:
        raise ValueError("config: " + "\n  ".join(["models have problems:", *problems]))

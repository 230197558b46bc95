"""Train an mmsegmentation model on the validated face data; resume where a run stopped.

- :func:`build_config` resolves a model config file against the data index
  (``validation.json``, ``flip.json``, ``stats.json``), ``train_on_val`` and the
  config's ``overrides`` into one mmengine ``Config``; evaluate and predict
  reuse it (or load the dumped ``train/config.py``).
- :func:`train` is the Snakemake step: check the work_dir's fingerprint
  (:func:`training_fingerprint`; a run made from other inputs is moved to
  ``train.previous/``), dump the config, take GPUs (:mod:`faceparse.gpus`), run
  the training as a child process (``torchrun`` for several GPUs) and write
  ``train.json``.
- ``python -m faceparse.train CONFIG [--launcher pytorch]`` is the training
  entry each process runs: resume from the work_dir's newest checkpoint that
  loads (:func:`resume_checkpoint`), else start (from ``load_from`` if the
  config names one).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from faceparse.splitfiles import write_json

log = logging.getLogger(__name__)

CHECKPOINT_ITER = re.compile(r"iter_(\d+)\.pth$")
# A Config.merge_from_dict key: dotted names, list indices as numbers (param_scheduler.1.end).
OVERRIDE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.([A-Za-z_][A-Za-z0-9_]*|[0-9]+))*")
FINGERPRINT = "fingerprint.json"


# --------------------------------------------------------------------------- config


def _read_json(path: str | Path) -> dict:
    with open(path) as f:
        return json.load(f)


def _abs(path: str | Path | None, base: Path) -> str | None:
    if path is None:
        return None
    p = Path(path)
    return str(p if p.is_absolute() else (base / p).resolve())


def write_split_list(path: Path, names: list[str]) -> str:
    """Write the image stems of a split, one a line (an mmseg ``ann_file``); keep an identical file."""
    text = "".join(f"{n}\n" for n in names)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return str(path.resolve())


def dataset_cfg(template: Mapping, image_dir: str, mask_dir: str | None, image_suffix: str,
                ann_file: str, pipeline: list | None = None) -> dict:
    """One FaceParseDataset entry from the config's template dataset and a split's folders."""
    ds = copy.deepcopy(dict(template))
    ds["data_root"] = ""
    ds["ann_file"] = ann_file
    ds["img_suffix"] = image_suffix
    ds["data_prefix"] = dict(img_path=image_dir, seg_map_path=mask_dir or "")
    if pipeline is not None:
        ds["pipeline"] = copy.deepcopy(pipeline)
    return ds


def _replace_type(node, old: str, new: str) -> None:
    """Replace ``type=old`` by ``type=new`` in every dict of a nested config."""
    if isinstance(node, dict):
        if node.get("type") == old:
            node["type"] = new
        for value in node.values():
            _replace_type(value, old, new)
    elif isinstance(node, list | tuple):
        for value in node:
            _replace_type(value, old, new)


def _fit_schedule(schedulers: list, old_max: int, new_max: int, overrides: dict) -> None:
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


def build_config(config_file: str | Path, validation: str | Path, stats: str | Path,
                 flip: str | Path | None = None, train_on_val: bool = False,
                 overrides: Mapping | None = None, work_dir: str | Path | None = None,
                 gpus: int = 0, split_dir: str | Path | None = None,
                 base_dir: str | Path | None = None, processes: int = 1,
                 keep_iters: Iterable[int] = ()):
    """The fully resolved mmseg config of a model.

    Args:
        config_file: the model's config (``configs/x.py``).
        validation: ``results/data/validation.json`` (the dataset index).
        stats: ``results/data/stats.json`` (mean/std, 0-255 RGB).
        flip: ``results/data/flip.json`` to train on the offline-flipped copies too.
        train_on_val: add the val split to the training set.
        overrides: ``{dotted.key: value}`` applied with ``Config.merge_from_dict``
            before the datasets are filled in (so ``train_dataloader.dataset.pipeline``
            can be overridden); a changed ``train_cfg.max_iters`` also moves the
            schedules (see ``_fit_schedule``); mean/std from
            ``stats`` unless overridden.
        work_dir: the mmengine work_dir (``results/models/{model}/train``).
        gpus: 0 trains on the CPU: fp32 ``OptimWrapper`` instead of AMP, BN
            instead of SyncBN, gloo for multi-process runs.
        split_dir: where the split lists (``ann_file``) go; default ``{work_dir}/splits``.
        base_dir: what relative paths in the data index are relative to
            (default: the current directory, the Snakemake workdir).
        processes: training processes (one per GPU). The config's
            ``train_dataloader.batch_size`` (after overrides) is the total batch
            of the recipe; each process gets ``batch_size / processes``.
        keep_iters: checkpoint iterations that must survive ``max_keep_ckpts``
            (a pinned ``select_iter``): kept by ``PinnedCheckpointHook``.

    Returns:
        an ``mmengine.Config``; data paths in it are absolute.

    Raises:
        ValueError: naming ``config_file``, for an override key that is not a
            dotted name, a total batch that does not divide over ``processes``,
            or a kept iteration that will never be saved.
    """
    from mmengine.config import Config

    base = Path(base_dir) if base_dir is not None else Path.cwd()
    overrides = dict(overrides or {})
    bad = [key for key in overrides if not isinstance(key, str) or not OVERRIDE_KEY.fullmatch(key)]
    if bad:
        raise ValueError(f"{config_file}: override keys must be dotted names (train_cfg.max_iters, "
                         f"param_scheduler.1.end); got {bad!r}")
    cfg = Config.fromfile(str(config_file))
    max_iters = cfg.train_cfg.get("max_iters")
    # Overrides first, so they can change the template datasets (pipelines,
    # batch size) that the split datasets below are made from.
    if overrides:
        cfg.merge_from_dict(overrides)
    new_max = cfg.train_cfg.get("max_iters")
    if max_iters is not None and new_max != max_iters and "param_scheduler" not in overrides:
        _fit_schedule(cfg.get("param_scheduler") or [], max_iters, new_max, overrides)

    index = _read_json(validation)
    splits = index["splits"]
    work_dir = Path(work_dir) if work_dir is not None else Path("work_dirs") / Path(config_file).stem
    split_dir = Path(split_dir) if split_dir is not None else work_dir / "splits"
    cfg.work_dir = str(work_dir.resolve())

    statistics = _read_json(stats)
    for key in ("mean", "std"):
        if not any(k.startswith(f"model.data_preprocessor.{key}") for k in overrides):
            cfg.model.data_preprocessor[key] = [float(v) for v in statistics[key]]

    def split_dataset(name: str, template: Mapping, entry: Mapping, list_name: str | None = None) -> dict:
        if not entry.get("mask_dir"):
            raise ValueError(f"{validation}: split {name!r} has no masks; cannot train or validate on it")
        ann = write_split_list(split_dir / f"{list_name or name}.txt", list(entry["names"]))
        return dataset_cfg(template, _abs(entry["image_dir"], base), _abs(entry["mask_dir"], base),
                           entry.get("image_suffix", ".jpg"), ann)

    train_template = cfg.train_dataloader.dataset
    parts = [split_dataset("train", train_template, splits["train"])]
    if flip is not None:
        parts.append(split_dataset("flip", train_template, _read_json(flip), "train_flip"))
    if train_on_val:
        parts.append(split_dataset("val", train_template, splits["val"], "train_val"))
    cfg.train_dataloader.dataset = parts[0] if len(parts) == 1 else dict(type="ConcatDataset", datasets=parts)
    cfg.val_dataloader.dataset = split_dataset("val", cfg.val_dataloader.dataset, splits["val"])
    cfg.test_dataloader = copy.deepcopy(cfg.val_dataloader)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        if loader.get("num_workers", 0) == 0:
            loader["persistent_workers"] = False  # torch refuses persistent workers without workers

    if processes > 1:
        total = int(cfg.train_dataloader.batch_size)
        if total % processes:
            raise ValueError(
                f"{config_file}: train_dataloader.batch_size={total} is the recipe's total batch and does not "
                f"split over {processes} GPUs; override train_dataloader.batch_size with a multiple of "
                f"{processes} (the new total batch) or change the model's gpus")
        cfg.train_dataloader.batch_size = total // processes
    if keep_iters:
        _keep_checkpoints(cfg, config_file, keep_iters)

    if gpus <= 0:
        if cfg.optim_wrapper.get("type") == "AmpOptimWrapper":
            cfg.optim_wrapper.type = "OptimWrapper"
            cfg.optim_wrapper.pop("loss_scale", None)
            cfg.optim_wrapper.pop("dtype", None)
        _replace_type(cfg.model, "SyncBN", "BN")
        cfg.env_cfg.setdefault("dist_cfg", {})["backend"] = "gloo"
        cfg.env_cfg.cudnn_benchmark = False
    return cfg


def _keep_checkpoints(cfg, config_file: str | Path, keep_iters: Iterable[int]) -> None:
    """Make the checkpoint hook keep ``keep_iters`` through rotation; refuse iterations never saved."""
    hook = cfg.default_hooks.get("checkpoint")
    max_iters = int(cfg.train_cfg.max_iters)
    if not hook or hook.get("by_epoch", False):
        raise ValueError(f"{config_file}: select_iter needs an iteration-based default_hooks.checkpoint")
    interval = int(hook.get("interval", -1))
    for it in keep_iters:
        if it > max_iters:
            raise ValueError(f"{config_file}: select_iter={it} is after train_cfg.max_iters={max_iters}: "
                             f"that checkpoint would never exist; lower select_iter or raise max_iters")
        if it != max_iters and (interval <= 0 or it % interval):
            raise ValueError(f"{config_file}: select_iter={it} is not a checkpoint iteration "
                             f"(default_hooks.checkpoint.interval={interval}, max_iters={max_iters}); "
                             f"pin a multiple of the interval or override the interval")
    if hook.get("type") not in ("CheckpointHook", "PinnedCheckpointHook"):
        raise ValueError(f"{config_file}: select_iter needs mmengine's CheckpointHook, not {hook.get('type')}")
    hook.type = "PinnedCheckpointHook"
    hook.keep_iters = sorted(int(i) for i in keep_iters)


# --------------------------------------------------------------------------- fingerprint

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
        "data": _without(_read_json(validation), _PATH_KEYS),
        "stats": _read_json(stats),
        "flip": _without(_read_json(flip), _PATH_KEYS) if flip is not None else None,
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
        recorded = _read_json(recorded_path)
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


# --------------------------------------------------------------------------- results


def checkpoint_iter(path: str | Path) -> int | None:
    m = CHECKPOINT_ITER.search(str(path))
    return int(m.group(1)) if m else None


def list_checkpoints(work_dir: str | Path) -> list[str]:
    """The work_dir's ``*iter_N.pth`` files, by iteration (``iter_N`` before ``best_*_iter_N``)."""
    found = [p for p in Path(work_dir).glob("*.pth") if checkpoint_iter(p) is not None]
    found.sort(key=lambda p: (checkpoint_iter(p), not p.name.startswith("iter_"), p.name))
    return [str(p) for p in found]


def checkpoint_error(path: str | Path) -> str | None:
    """Why a checkpoint does not load (None: it does).

    Opens it as mmengine's resume will (torch's ``weights_only`` loader with
    :mod:`faceparse.mm.compat`'s allow-list), memory-mapped, so the tensors are
    not read: a file cut short while saving fails here without reading gigabytes.
    """
    import torch

    from faceparse.mm import compat

    compat.apply()
    try:
        torch.load(str(path), map_location="cpu", mmap=True, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure means "cannot resume from it"
        return f"{type(e).__name__}: {e}"
    return None


def loadable_checkpoints(work_dir: str | Path) -> list[str]:
    """:func:`list_checkpoints` without the files that do not load (warned about)."""
    found = []
    for path in list_checkpoints(work_dir):
        error = checkpoint_error(path)
        if error is None:
            found.append(path)
        else:
            log.warning("%s does not load, left out (%s)", path, error)
    return found


def resume_checkpoint(work_dir: str | Path) -> str | None:
    """The newest checkpoint of ``work_dir`` that loads, or None.

    mmengine's ``last_checkpoint`` holds the absolute path of the last save: it
    dangles once the project folder moves, and the file it names may have been
    cut short. The work_dir's own ``*iter_N.pth`` files are the truth: newest
    first (``iter_N`` before its ``best_*`` copy), each opened (see
    :func:`checkpoint_error`); one that does not load is skipped with a warning.
    """
    work_dir = Path(work_dir)
    candidates = list_checkpoints(work_dir) if work_dir.is_dir() else []
    candidates.sort(key=lambda p: (-checkpoint_iter(p), not Path(p).name.startswith("iter_")))
    for path in candidates:
        error = checkpoint_error(path)
        if error is None:
            return path
        print(f"faceparse.train: WARNING: {path} does not load ({error}); trying the one before", flush=True)
    return None


def read_val_scores(work_dir: str | Path, metric: str = "mIoU") -> list[dict]:
    """Validation ``metric`` per iteration, in percent as mmseg's IoUMetric logs it; an iteration
    validated again by a resumed run (after a checkpoint that did not load) has its last score."""
    from faceparse.scalars import read_scalars

    _, val = read_scalars(work_dir, metric)
    by_iter = {int(row["step"]): round(float(row.get(metric, row.get(f"val/{metric}"))), 6) for row in val}
    return [{"iter": it, metric: score} for it, score in sorted(by_iter.items())]


def summarize(work_dir: str | Path, config_path: str | Path, max_iters: int, train_on_val: bool = False,
              fingerprint: str | None = None) -> dict:
    """The content of ``train.json``: only checkpoints that exist and load are listed."""
    return {
        "work_dir": str(work_dir),
        "config": str(config_path),
        "checkpoints": loadable_checkpoints(work_dir),
        "max_iters": int(max_iters),
        "train_on_val": bool(train_on_val),
        "fingerprint": fingerprint,
        "val": read_val_scores(work_dir),
    }


# --------------------------------------------------------------------------- launch


def _child_output():
    """Where the child's output goes: our stderr when it is a real file (the rule's log)."""
    try:
        sys.stderr.flush()
        sys.stderr.fileno()
        return sys.stderr
    except (AttributeError, OSError, ValueError):
        return None


class _Terminated(Exception):
    pass


def _raise_terminated(signum, frame):
    raise _Terminated(f"signal {signum}")


def _die_with_parent() -> None:
    """In the child (Linux): get SIGTERM when the launching process dies, so no training is orphaned."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def training_command(config_path: str | Path, nproc: int = 1, threads: int | None = None) -> list[str]:
    """The command that trains ``config_path`` with ``nproc`` processes."""
    entry = ["-m", "faceparse.train", str(config_path)]
    if threads:
        entry += ["--threads", str(threads)]
    if nproc > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={nproc}", *entry, "--launcher", "pytorch"]
    return [sys.executable, *entry]


def launch(config_path: str | Path, gpus: int = 0, nproc: int | None = None, threads: int = 1,
           gpu_timeout: float | None = None) -> None:
    """Run the training of a dumped config in a child process (``torchrun`` for nproc > 1).

    ``gpus`` GPUs are taken with :func:`faceparse.gpus.acquire` and shown to the
    child through ``CUDA_VISIBLE_DEVICES`` (none for ``gpus=0``: CPU). ``nproc``
    defaults to one process per GPU (one on the CPU); ``threads`` are split
    between the processes.
    """
    from faceparse import gpus as gpu_locks

    nproc = nproc or max(gpus, 1)
    if gpus > 0 and nproc != gpus:
        raise ValueError(f"one process per GPU: gpus={gpus}, nproc={nproc}")
    per_process = max(1, threads // nproc)
    with gpu_locks.acquire(gpus, timeout=gpu_timeout) as devices:
        env = gpu_locks.child_env(devices)
        env["OMP_NUM_THREADS"] = str(per_process)
        src = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
        cmd = training_command(config_path, nproc, per_process)
        log.info("training on %s: %s", f"GPU(s) {','.join(devices)}" if devices else "CPU", " ".join(cmd))
        out = _child_output()
        child = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT if out else None,
                                 preexec_fn=_die_with_parent)
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
        try:
            returncode = child.wait()
        except BaseException:
            # Snakemake or SLURM stopping this job: stop the training with it
            # (its checkpoints stay; the rerun resumes).
            child.terminate()
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
            raise
        finally:
            if in_main:
                signal.signal(signal.SIGTERM, previous)
        if returncode:
            raise subprocess.CalledProcessError(returncode, cmd)


def train(config_file: str | Path, validation: str | Path, stats: str | Path, train_json: str | Path,
          work_dir: str | Path, flip: str | Path | None = None, train_on_val: bool = False,
          overrides: Mapping | None = None, gpus: int = 0, threads: int = 1,
          nproc: int | None = None, select_iter: int | None = None) -> dict:
    """The train step: resolve the config, check the work_dir's fingerprint, train (resuming
    only a run of the same inputs), write ``train.json``.

    ``select_iter`` (a pinned checkpoint) is kept through checkpoint rotation and
    checked before training starts; it is not part of the fingerprint.
    """
    work_dir = Path(work_dir)
    processes = nproc or max(gpus, 1)

    def resolve():
        return build_config(config_file, validation, stats, flip=flip, train_on_val=train_on_val,
                            overrides=overrides, work_dir=work_dir, gpus=gpus, processes=processes,
                            keep_iters=[select_iter] if select_iter else ())

    cfg = resolve()
    fingerprint = training_fingerprint(cfg, validation, stats, flip, train_on_val, gpus, processes)
    if set_aside_stale_run(work_dir, fingerprint) is not None:
        cfg = resolve()  # the split lists went with the old run
    write_json(work_dir / FINGERPRINT, fingerprint)
    config_path = work_dir / "config.py"
    cfg.dump(str(config_path))
    log.info("resolved config: %s (fingerprint %s)", config_path, fingerprint["sha256"][:16])
    launch(config_path, gpus=gpus, nproc=nproc, threads=threads)
    summary = summarize(work_dir.resolve(), config_path.resolve(), cfg.train_cfg.max_iters,
                        train_on_val=train_on_val, fingerprint=fingerprint["sha256"])
    if not summary["checkpoints"]:
        raise RuntimeError(f"training finished without a checkpoint that loads in {work_dir}")
    # mmengine's own pointer, for its tools: the newest checkpoint that loads, where the work_dir is now
    newest = max(summary["checkpoints"], key=lambda p: (checkpoint_iter(p), Path(p).name.startswith("iter_")))
    (work_dir / "last_checkpoint").write_text(newest)
    write_json(train_json, summary)
    log.info("%d checkpoint(s), val mIoU: %s", len(summary["checkpoints"]),
             ", ".join(f"{v['iter']}: {v['mIoU']:.4f}" for v in summary["val"]) or "none")
    return summary


# --------------------------------------------------------------------------- entry


def _init_cpu_distributed() -> None:
    """Start a gloo process group for a CPU ``torchrun`` (mmengine's would call cuda.set_device)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")


def run(config_path: str | Path, launcher: str = "none", threads: int | None = None) -> int:
    """Train a dumped config in this process; returns the iteration reached.

    Resumes from the work_dir's newest checkpoint that loads
    (:func:`resume_checkpoint`: the optimizer, schedule, iteration and message
    hub come back); a run that already reached ``max_iters`` is not started again.
    """
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner

    if threads:
        torch.set_num_threads(int(threads))
    cfg = Config.fromfile(str(config_path))
    cfg.launcher = launcher
    if launcher != "none" and not torch.cuda.is_available():
        _init_cpu_distributed()
        cfg.model_wrapper_cfg = dict(type="mmseg.CPUDistributedDataParallel")
    last = resume_checkpoint(cfg.work_dir)
    max_iters = int(cfg.train_cfg.max_iters)
    if last:
        done = checkpoint_iter(last)
        if done is not None and done >= max_iters:
            print(f"faceparse.train: {last} already reached {done} >= max_iters {max_iters}; nothing to do",
                  flush=True)
            return done
        cfg.resume, cfg.load_from = True, last
        print(f"faceparse.train: resuming from {last}", flush=True)
    else:
        cfg.resume = False
    runner = Runner.from_cfg(cfg)
    runner.train()
    rank, world = runner.rank, runner.world_size
    print(f"faceparse.train: rank {rank}/{world} finished at iter {runner.iter}", flush=True)
    return runner.iter


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m faceparse.train", description=run.__doc__)
    parser.add_argument("config", help="a resolved config (results/models/{model}/train/config.py)")
    parser.add_argument("--launcher", choices=["none", "pytorch"], default="none")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    args = parser.parse_args(argv)
    run(args.config, args.launcher, args.threads)


if __name__ == "__main__":
    main()

"""Train an mmsegmentation model on the validated face data; resume where a run stopped.

- :func:`build_config` resolves a model config file against the data index
  (``validation.json``, ``flip.json``, ``stats.json``), ``train_on_val`` and the
  config's ``overrides`` into one mmengine ``Config``; evaluate and predict
  reuse it (or load the dumped ``train/config.py``).
- :func:`train` is the Snakemake step: dump the config, take GPUs
  (:mod:`faceparse.gpus`), run the training as a child process (``torchrun``
  for several GPUs) and write ``train.json``.
- ``python -m faceparse.train CONFIG [--launcher pytorch]`` is the training
  entry each process runs: resume from the work_dir's last checkpoint when
  there is one, else start (from ``load_from`` if the config names one).
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

CHECKPOINT_ITER = re.compile(r"iter_(\d+)\.pth$")


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
                 base_dir: str | Path | None = None):
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

    Returns:
        an ``mmengine.Config``; data paths in it are absolute.
    """
    from mmengine.config import Config

    base = Path(base_dir) if base_dir is not None else Path.cwd()
    cfg = Config.fromfile(str(config_file))
    overrides = dict(overrides or {})
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

    if gpus <= 0:
        if cfg.optim_wrapper.get("type") == "AmpOptimWrapper":
            cfg.optim_wrapper.type = "OptimWrapper"
            cfg.optim_wrapper.pop("loss_scale", None)
            cfg.optim_wrapper.pop("dtype", None)
        _replace_type(cfg.model, "SyncBN", "BN")
        cfg.env_cfg.setdefault("dist_cfg", {})["backend"] = "gloo"
        cfg.env_cfg.cudnn_benchmark = False
    return cfg


# --------------------------------------------------------------------------- results


def checkpoint_iter(path: str | Path) -> int | None:
    m = CHECKPOINT_ITER.search(str(path))
    return int(m.group(1)) if m else None


def list_checkpoints(work_dir: str | Path) -> list[str]:
    """The work_dir's ``*iter_N.pth`` files, by iteration (``iter_N`` before ``best_*_iter_N``)."""
    found = [p for p in Path(work_dir).glob("*.pth") if checkpoint_iter(p) is not None]
    found.sort(key=lambda p: (checkpoint_iter(p), not p.name.startswith("iter_"), p.name))
    return [str(p) for p in found]


def read_val_scores(work_dir: str | Path, metric: str = "mIoU") -> list[dict]:
    """Validation ``metric`` per iteration, in percent as mmseg's IoUMetric logs it."""
    from faceparse.scalars import read_scalars

    _, val = read_scalars(work_dir, metric)
    return [{"iter": row["step"], metric: round(float(row.get(metric, row.get(f"val/{metric}"))), 6)}
            for row in val]


def summarize(work_dir: str | Path, config_path: str | Path, max_iters: int) -> dict:
    """The content of ``train.json``."""
    return {
        "work_dir": str(work_dir),
        "config": str(config_path),
        "checkpoints": list_checkpoints(work_dir),
        "max_iters": int(max_iters),
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
          nproc: int | None = None) -> dict:
    """The train step: resolve and dump the config, train (resuming), write ``train.json``."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    cfg = build_config(config_file, validation, stats, flip=flip, train_on_val=train_on_val,
                       overrides=overrides, work_dir=work_dir, gpus=gpus)
    config_path = work_dir / "config.py"
    cfg.dump(str(config_path))
    log.info("resolved config: %s", config_path)
    launch(config_path, gpus=gpus, nproc=nproc, threads=threads)
    summary = summarize(work_dir.resolve(), config_path.resolve(), cfg.train_cfg.max_iters)
    if not summary["checkpoints"]:
        raise RuntimeError(f"training finished without a checkpoint in {work_dir}")
    Path(train_json).parent.mkdir(parents=True, exist_ok=True)
    with open(train_json, "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
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

    Resumes from the work_dir's ``last_checkpoint`` when it exists (the
    optimizer, schedule, iteration and message hub come back); a run that
    already reached ``max_iters`` is not started again.
    """
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner, find_latest_checkpoint

    if threads:
        torch.set_num_threads(int(threads))
    cfg = Config.fromfile(str(config_path))
    cfg.launcher = launcher
    if launcher != "none" and not torch.cuda.is_available():
        _init_cpu_distributed()
        cfg.model_wrapper_cfg = dict(type="mmseg.CPUDistributedDataParallel")
    last = find_latest_checkpoint(cfg.work_dir) if Path(cfg.work_dir).is_dir() else None
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

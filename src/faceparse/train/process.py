"""The training each process runs: ``python -m faceparse.train.process CONFIG [--launcher pytorch]``.

Started by :mod:`faceparse.train.launch` (through ``torchrun`` for several
processes): resume from the work_dir's newest checkpoint that loads
(:func:`faceparse.train.checkpoints.resume_checkpoint`), else start (from ``load_from``
if the config names one). Its messages carry the step's tag, ``faceparse.train:``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from faceparse.train.checkpoints import checkpoint_iter, resume_checkpoint


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
            print(f"faceparse.train: {last} already reached {done} >= max_iters {max_iters}; nothing to do", flush=True)
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
    parser = argparse.ArgumentParser(prog="python -m faceparse.train.process", description=run.__doc__)
    parser.add_argument("config", help="a resolved config (results/models/{model}/train/runs/{fingerprint}/config.py)")
    parser.add_argument("--launcher", choices=["none", "pytorch"], default="none")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    args = parser.parse_args(argv)
    run(args.config, args.launcher, args.threads)


if __name__ == "__main__":
    main()

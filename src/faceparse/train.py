"""The train step: train a model on the validated face data, resuming only a run of the same inputs.

:func:`train` resolves the config (:func:`faceparse.mm.config.build_config`),
checks the work_dir's fingerprint (:mod:`faceparse.run_fingerprint`; a run made
from other inputs is moved to ``train.previous/``), dumps the config, runs the
training (:func:`faceparse.launch.launch`) and writes ``train.json``
(:func:`summarize`).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from faceparse.checkpoints import loadable_checkpoints, point_last_checkpoint
from faceparse.launch import launch
from faceparse.mm.config import build_config
from faceparse.run_fingerprint import FINGERPRINT, set_aside_stale_run, training_fingerprint
from faceparse.records import TrainSummary, write_json

log = logging.getLogger(__name__)


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
    point_last_checkpoint(work_dir, summary["checkpoints"])
    TrainSummary(**summary).write(train_json)
    log.info("%d checkpoint(s), val mIoU: %s", len(summary["checkpoints"]),
             ", ".join(f"{v['iter']}: {v['mIoU']:.4f}" for v in summary["val"]) or "none")
    return summary

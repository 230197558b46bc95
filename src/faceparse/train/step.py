"""The train step: train a model on the validated face data, resuming only a run of the same inputs.

:func:`train` resolves the config (:func:`faceparse.mm.config.build_config`),
takes its training fingerprint (:mod:`faceparse.train.fingerprint`), and trains in
the run store's folder of that fingerprint (:mod:`faceparse.train.runs`): a run of the
same inputs is resumed (or found finished), other runs are never touched. It
dumps the config, runs the training (:func:`faceparse.train.launch.launch`) and writes
``train.json`` (:func:`summarize`), which names the current run.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from faceparse.mm.config import build_config, track_with_mlflow
from faceparse.mm.params import count_parameters
from faceparse.records import TrainSummary, read_index, read_json, selection_split, write_json
from faceparse.train.checkpoints import loadable_checkpoints, point_last_checkpoint
from faceparse.train.fingerprint import fingerprint_changes, training_fingerprint
from faceparse.train.launch import launch
from faceparse.train.runs import FINGERPRINT, adopt_legacy_runs, has_run, latest_run, run_dir
from faceparse.train.scalars import read_scalars
from faceparse.train.tracking import Tracking, backend_args

log = logging.getLogger(__name__)


VAL_SCORES = ("mIoU", "mF1", "mF1_19")


def read_val_scores(work_dir: str | Path) -> list[dict]:
    """The validation scores per iteration (``VAL_SCORES`` that were logged; mF1 and mF1_19 by
    :class:`faceparse.mm.evaluation.FaceParseMetric`), in percent; an iteration validated again
    by a resumed run (after a checkpoint that did not load) has its last scores."""
    _, val = read_scalars(work_dir, "mIoU")
    by_iter = {}
    for row in val:
        scores = {m: row.get(m, row.get(f"val/{m}")) for m in VAL_SCORES}
        by_iter[int(row["step"])] = {m: round(float(v), 6) for m, v in scores.items() if v is not None}
    return [{"iter": it, **scores} for it, scores in sorted(by_iter.items())]


def summarize(
    work_dir: str | Path,
    config_path: str | Path,
    max_iters: int,
    train_on_val: bool = False,
    fingerprint: str | None = None,
    parameters: int | None = None,
    val_split: str = "val",
) -> dict:
    """The content of ``train.json``: only checkpoints that exist and load are listed; ``val_split``
    is the split the val scores are on (dev when the index has one)."""
    return {
        "work_dir": str(work_dir),
        "config": str(config_path),
        "checkpoints": loadable_checkpoints(work_dir),
        "max_iters": int(max_iters),
        "train_on_val": bool(train_on_val),
        "fingerprint": fingerprint,
        "val": read_val_scores(work_dir),
        "parameters": parameters,
        "val_split": val_split,
    }


def _explain(run: Path, root: Path, fingerprint: dict) -> None:
    """Log whether ``run`` resumes, is found again, or starts; for a new run, how its inputs
    differ from those of the run the last job used."""
    if has_run(run):
        log.info("run %s: resuming (or finding finished) the run of these inputs", run)
        return
    last = latest_run(root, besides=run)
    why = ""
    if last is not None:
        changes = fingerprint_changes(read_json(last / FINGERPRINT), fingerprint)
        why = f"; its inputs differ from those of run {last.name}: {', '.join(changes)} (kept as it is)"
    log.warning("run %s: training from iteration 0%s", run, why)


def train(
    config_file: str | Path,
    validation: str | Path,
    stats: str | Path,
    train_json: str | Path,
    work_dir: str | Path,
    flip: str | Path | None = None,
    train_on_val: bool = False,
    overrides: Mapping | None = None,
    gpus: int = 0,
    threads: int = 1,
    nproc: int | None = None,
    select_iter: int | None = None,
    tracking: Tracking | None = None,
) -> dict:
    """The train step: resolve the config, take its fingerprint, train in the run store's
    folder of that fingerprint (``{work_dir}/runs/{fingerprint}``), write ``train.json``.

    ``work_dir`` is the model's run store. A run of the same fingerprint is resumed or
    found finished; a new one starts from 0 in its own folder, which a job that fails
    before its first checkpoint removes again (other runs are never touched).
    ``select_iter`` (a pinned checkpoint) is kept through checkpoint rotation and
    checked before training starts; it is not part of the fingerprint. With ``tracking`` the run
    is logged to MLflow too (:mod:`faceparse.train.tracking`), which is not part of it either.
    """
    root = Path(work_dir)
    processes = nproc or max(gpus, 1)

    def resolve(run: Path, split_dir: str | Path | None = None):
        return build_config(
            config_file,
            validation,
            stats,
            flip=flip,
            train_on_val=train_on_val,
            overrides=overrides,
            work_dir=run,
            gpus=gpus,
            processes=processes,
            split_dir=split_dir,
            keep_iters=[select_iter] if select_iter else (),
        )

    with tempfile.TemporaryDirectory() as scratch:  # the fingerprint has no paths: any split_dir will do
        fingerprint = training_fingerprint(
            resolve(root, scratch), validation, stats, flip, train_on_val, gpus, processes
        )
    adopt_legacy_runs(root)
    run = run_dir(root, fingerprint)
    _explain(run, root, fingerprint)
    created = not run.exists()
    try:
        return _train_run(
            resolve(run),
            run,
            fingerprint,
            train_json,
            train_on_val,
            gpus,
            nproc,
            threads,
            tracking,
            selection_split(read_index(validation)),
        )
    except BaseException:
        if created and run.is_dir() and not has_run(run):
            shutil.rmtree(run)  # nothing trained: leave the store as it was
        raise


def _train_run(
    cfg,
    run: Path,
    fingerprint: dict,
    train_json: str | Path,
    train_on_val: bool,
    gpus: int,
    nproc: int | None,
    threads: int,
    tracking: Tracking | None,
    val_split: str,
) -> dict:
    """Train (or resume) the resolved ``cfg`` in its run folder and write ``train.json``."""
    parameters = count_parameters(cfg.model)
    if tracking is not None:
        track_with_mlflow(cfg, **backend_args(tracking, run.name, fingerprint["sha256"], parameters))
    write_json(run / FINGERPRINT, fingerprint)
    config_path = run / "config.py"
    cfg.dump(str(config_path))
    log.info("resolved config: %s (fingerprint %s)", config_path, fingerprint["sha256"][:16])
    launch(config_path, gpus=gpus, nproc=nproc, threads=threads)
    summary = summarize(
        run.resolve(),
        config_path.resolve(),
        cfg.train_cfg.max_iters,
        train_on_val=train_on_val,
        fingerprint=fingerprint["sha256"],
        parameters=parameters,
        val_split=val_split,
    )
    if not summary["checkpoints"]:
        raise RuntimeError(f"training finished without a checkpoint that loads in {run}")
    point_last_checkpoint(run, summary["checkpoints"])
    TrainSummary(**summary).write(train_json)
    log.info(
        "%d checkpoint(s), %s mIoU: %s",
        len(summary["checkpoints"]),
        val_split,
        ", ".join(f"{v['iter']}: {v['mIoU']:.4f}" for v in summary["val"]) or "none",
    )
    return summary

"""Pick the checkpoint a model is evaluated and submitted with."""

from __future__ import annotations

import logging
from pathlib import Path

from faceparse.records import TENSORBOARD, Selection, TrainSummary
from faceparse.train.checkpoints import checkpoint_iter
from faceparse.train.tracking import Tracking, log_selection

log = logging.getLogger(__name__)


def choose(summary: dict, select_iter: int | None = None, metric: str = "mIoU") -> dict:
    """``{"checkpoint", "iter", "mIoU", "metric", "score", "split"}`` from a ``train.json`` summary.

    With ``select_iter`` the checkpoint of that iteration (its val scores, or null
    when it was not validated); otherwise the checkpoint with the best val ``metric``
    (``mIoU`` or ``mF1``), the later one on a tie. The val scores are those of the
    summary's ``val_split`` (the dev split when the index has one). Checkpoints deleted since
    (``max_keep_ckpts``) are not candidates. A plain ``iter_N.pth`` is preferred to
    its ``best_*`` copy.
    """
    by_iter: dict[int, str] = {}
    for path in summary.get("checkpoints", []):
        it = checkpoint_iter(path)
        if it is None or not Path(path).exists():
            continue
        if it not in by_iter or (
            Path(path).name.startswith("iter_") and not Path(by_iter[it]).name.startswith("iter_")
        ):
            by_iter[it] = path
    if not by_iter:
        raise ValueError("train.json lists no existing checkpoint")
    split = summary.get("val_split", "val")
    val = {int(v["iter"]): v for v in summary.get("val", [])}
    scores = {it: float(v[metric]) for it, v in val.items() if v.get(metric) is not None}
    if select_iter is not None:
        if select_iter not in by_iter:
            raise ValueError(
                f"select_iter={select_iter}: no such checkpoint; have {sorted(by_iter)} (a "
                "pinned iteration is kept from the run that knows it; one pinned after it "
                "was rotated out is gone: keep all with default_hooks.checkpoint.max_keep_ckpts=-1)"
            )
        it = int(select_iter)
        reason = "pinned by select_iter"
    else:
        scored = [it for it in by_iter if it in scores]
        if not scored:
            hint = (
                " (mF1 is logged by val_evaluator type='FaceParseMetric', configs/_base_/faceparse_dataset.py)"
                if metric != "mIoU"
                else ""
            )
            raise ValueError(
                f"no {split} {metric} for any checkpoint ({sorted(by_iter)}); validate at the "
                f"checkpoint interval or pin select_iter{hint}"
            )
        it = max(scored, key=lambda i: (scores[i], i))
        reason = f"best {split} {metric}"
    choice = {
        "checkpoint": by_iter[it],
        "iter": it,
        "mIoU": val.get(it, {}).get("mIoU"),
        "metric": metric,
        "score": scores.get(it),
        "split": split,
    }
    log.info("selected %s (%s, %s %s %s)", choice["checkpoint"], reason, split, metric, choice["score"])
    return choice


def mark_in_tensorboard(work_dir: str | Path, choice: dict) -> None:
    """The selected checkpoint in the run's TensorBoard curves: ``selected/{metric}`` at its iteration."""
    # deferred: torch's TensorBoard writer is needed here only, not by choose()
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(Path(work_dir) / TENSORBOARD))
    try:
        if choice["score"] is not None:
            writer.add_scalar(f"selected/{choice['metric']}", choice["score"], choice["iter"])
        writer.add_text(
            "selected", f"{Path(choice['checkpoint']).name} (by {choice['split']} {choice['metric']})", choice["iter"]
        )
    finally:
        writer.close()


def select(
    train_json: str | Path,
    best_json: str | Path,
    select_iter: int | None = None,
    metric: str = "mIoU",
    tracking: Tracking | None = None,
) -> dict:
    """The select step: read ``train.json``, write ``best.json``, mark the choice in TensorBoard
    (and, with ``tracking``, in the run's MLflow run: :func:`faceparse.train.tracking.log_selection`)."""
    summary = TrainSummary.read(train_json)
    choice = choose(vars(summary), select_iter, metric)
    Selection(**choice).write(best_json)
    mark_in_tensorboard(summary.work_dir, choice)
    if tracking is not None:
        log_selection(tracking, Path(summary.work_dir).name, choice)
    return choice

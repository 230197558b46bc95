"""Pick the checkpoint a model is evaluated and submitted with."""
from __future__ import annotations

import logging
from pathlib import Path

from faceparse.train.checkpoints import checkpoint_iter
from faceparse.records import Selection, TrainSummary

log = logging.getLogger(__name__)


def choose(summary: dict, select_iter: int | None = None) -> dict:
    """``{"checkpoint", "iter", "mIoU"}`` from a ``train.json`` summary.

    With ``select_iter`` the checkpoint of that iteration (its val mIoU, or null
    when it was not validated); otherwise the checkpoint with the best val mIoU,
    the later one on a tie. Checkpoints deleted since (``max_keep_ckpts``) are
    not candidates. A plain ``iter_N.pth`` is preferred to its ``best_*`` copy.
    """
    by_iter: dict[int, str] = {}
    for path in summary.get("checkpoints", []):
        it = checkpoint_iter(path)
        if it is None or not Path(path).exists():
            continue
        if it not in by_iter or (Path(path).name.startswith("iter_") and not Path(by_iter[it]).name.startswith("iter_")):
            by_iter[it] = path
    if not by_iter:
        raise ValueError("train.json lists no existing checkpoint")
    scores = {int(v["iter"]): float(v["mIoU"]) for v in summary.get("val", []) if v.get("mIoU") is not None}
    if select_iter is not None:
        if select_iter not in by_iter:
            raise ValueError(f"select_iter={select_iter}: no such checkpoint; have {sorted(by_iter)} (a "
                             "pinned iteration is kept from the run that knows it; one pinned after it "
                             "was rotated out is gone: keep all with default_hooks.checkpoint.max_keep_ckpts=-1)")
        it = int(select_iter)
        reason = "pinned by select_iter"
    else:
        scored = [it for it in by_iter if it in scores]
        if not scored:
            raise ValueError(f"no val mIoU for any checkpoint ({sorted(by_iter)}); "
                             "validate at the checkpoint interval or pin select_iter")
        it = max(scored, key=lambda i: (scores[i], i))
        reason = "best val mIoU"
    choice = {"checkpoint": by_iter[it], "iter": it, "mIoU": scores.get(it)}
    log.info("selected %s (%s, val mIoU %s)", choice["checkpoint"], reason, choice["mIoU"])
    return choice


def select(train_json: str | Path, best_json: str | Path, select_iter: int | None = None) -> dict:
    """The select step: read ``train.json``, write ``best.json``."""
    choice = choose(vars(TrainSummary.read(train_json)), select_iter)
    Selection(**choice).write(best_json)
    return choice

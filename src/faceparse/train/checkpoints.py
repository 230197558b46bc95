"""The ``iter_N.pth`` checkpoints of an mmengine work_dir: which exist, which load, which to resume.

mmengine's ``last_checkpoint`` holds the absolute path of the last save: it
dangles once the project folder moves, and the file it names may have been cut
short. The work_dir's own files are the truth; :func:`point_last_checkpoint`
repairs the pointer for mmengine's tools.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

CHECKPOINT_ITER = re.compile(r"iter_(\d+)\.pth$")


def checkpoint_iter(path: str | Path) -> int | None:
    m = CHECKPOINT_ITER.search(str(path))
    return int(m.group(1)) if m else None


def _recency(path: str | Path) -> tuple[int | None, bool]:
    """Sort key of :func:`list_checkpoints`' paths, newest last: by iteration, then ``iter_N``
    after its ``best_*_iter_N`` copy."""
    return checkpoint_iter(path), Path(path).name.startswith("iter_")


def list_checkpoints(work_dir: str | Path) -> list[str]:
    """The work_dir's ``*iter_N.pth`` files, by iteration (``iter_N`` before ``best_*_iter_N``)."""
    found = [p for p in Path(work_dir).glob("*.pth") if checkpoint_iter(p) is not None]
    found.sort(key=lambda p: (checkpoint_iter(p), not p.name.startswith("iter_"), p.name))
    return [str(p) for p in found]


def checkpoint_error(path: str | Path) -> str | None:
    """Why a checkpoint does not load (None: it does).

    Opens it as mmengine's resume will (:func:`faceparse.mm.compat.open_checkpoint`).
    """
    # deferred: torch and mmseg's registries take seconds to import, which listing or
    # naming checkpoints (python -m faceparse.train.runs list) does not need
    from faceparse.mm.compat import open_checkpoint

    try:
        open_checkpoint(path)
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

    Not mmengine's ``last_checkpoint``: the work_dir's own ``*iter_N.pth`` files,
    newest first (``iter_N`` before its ``best_*`` copy), each opened (see
    :func:`checkpoint_error`); one that does not load is skipped with a warning
    printed into the training's output.
    """
    work_dir = Path(work_dir)
    candidates = list_checkpoints(work_dir) if work_dir.is_dir() else []
    candidates.sort(key=_recency, reverse=True)
    for path in candidates:
        error = checkpoint_error(path)
        if error is None:
            return path
        print(f"faceparse.train: WARNING: {path} does not load ({error}); trying the one before", flush=True)
    return None


def point_last_checkpoint(work_dir: str | Path, checkpoints: Iterable[str]) -> None:
    """Point mmengine's ``last_checkpoint`` (for its tools) at the newest of ``checkpoints``,
    where the work_dir is now."""
    (Path(work_dir) / "last_checkpoint").write_text(max(checkpoints, key=_recency))

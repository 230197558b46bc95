"""A model's training runs, kept by what they were trained from: ``{train}/runs/{fingerprint}/``.

Every run a model ever trained stays in its own mmengine work_dir, named by the
first 16 hex digits of its training fingerprint (:mod:`faceparse.train.fingerprint`).
A change of inputs starts a new folder and touches no other, so a revert finds its
finished run again and trains nothing, and a failed job leaves every run as it was.
The current run is the one ``train.json`` names. Nothing here deletes a run by
itself: :func:`remove_runs` removes the runs a user names (``faceparse-runs remove``).

Work dirs of the layout before this store (the run in ``train/`` itself and one
generation in ``train.previous/``) are moved into it by :func:`adopt_legacy_runs`.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from faceparse.records import TrainSummary, read_json, write_json
from faceparse.train.checkpoints import checkpoint_iter, list_checkpoints
from faceparse.train.fingerprint import fingerprint_of

log = logging.getLogger(__name__)

FINGERPRINT = "fingerprint.json"
RUNS = "runs"
NAME_LENGTH = 16


def run_name(sha256: str) -> str:
    return sha256[:NAME_LENGTH]


def run_dir(root: str | Path, fingerprint: dict) -> Path:
    """The work_dir of the run with ``fingerprint`` under a model's ``root`` (``results/models/{m}/train``)."""
    return Path(root) / RUNS / run_name(fingerprint["sha256"])


def has_run(work_dir: Path) -> bool:
    """Whether a work_dir holds any trace of training (a checkpoint or logged scalars)."""
    return any(work_dir.glob("*.pth")) or any(work_dir.glob("*/vis_data/scalars.json"))


def _adopt(old: Path, root: Path) -> Path:
    """Move a pre-store work_dir's run into ``root/runs/``; the name is its fingerprint, as now
    scoped, or ``legacy-{mtime}`` when it recorded none."""
    recorded = old / FINGERPRINT
    if recorded.is_file() and "inputs" in (data := read_json(recorded)):
        fingerprint = fingerprint_of(data["inputs"])
        name = run_name(fingerprint["sha256"])
    else:
        fingerprint = None
        name = "legacy-" + time.strftime("%Y%m%d-%H%M%S", time.localtime(old.stat().st_mtime))
    target = root / RUNS / name
    while target.exists():
        target = target.with_name(target.name + "+")
    target.mkdir(parents=True)
    for entry in list(old.iterdir()):
        if entry.name != RUNS:
            entry.rename(target / entry.name)
    if fingerprint is not None and fingerprint["sha256"] != data.get("sha256"):
        recorded_now = target / FINGERPRINT
        recorded_now.rename(target / "fingerprint.before-scoping.json")
        write_json(recorded_now, fingerprint)
    log.warning("%s: moved its run into the run store as %s", old, target)
    return target


def legacy_work_dirs(root: str | Path) -> list[Path]:
    """Work dirs of the layout before the store that hold a run: ``root`` itself, ``{root}.previous``."""
    root = Path(root)
    return [d for d in (root, root.with_name(root.name + ".previous")) if d.is_dir() and has_run(d)]


def adopt_legacy_runs(root: str | Path) -> list[Path]:
    """Move the runs of :func:`legacy_work_dirs` into ``root/runs/``."""
    root = Path(root)
    adopted = []
    for old in legacy_work_dirs(root):
        adopted.append(_adopt(old, root))
        if old != root:
            old.rmdir()  # train.previous/, emptied
    return adopted


@dataclass(frozen=True)
class RunInfo:
    """One stored run, as :func:`list_runs` describes it."""

    name: str
    path: Path
    bytes: int
    modified: float
    last_iter: int | None
    current: bool


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def current_run(root: str | Path) -> Path | None:
    """The work_dir ``train.json`` (beside ``root``) names, if it is readable."""
    train_json = Path(root).with_name("train.json")
    try:
        return Path(TrainSummary.read(train_json).work_dir).resolve()
    except (OSError, ValueError):
        return None


def latest_run(root: str | Path, besides: Path | None = None) -> Path | None:
    """The run a train job used last (the newest ``fingerprint.json``; each job writes its run's),
    other than ``besides``. Not train.json: Snakemake removes it before the job runs."""
    recorded = [p for p in (Path(root) / RUNS).glob(f"*/{FINGERPRINT}") if p.parent != besides]
    return max(recorded, key=lambda p: p.stat().st_mtime_ns).parent if recorded else None


def list_runs(root: str | Path) -> list[RunInfo]:
    """Every run under ``root/runs/``, oldest first."""
    store = Path(root) / RUNS
    current = current_run(root)
    runs = []
    for path in sorted(p for p in store.iterdir() if p.is_dir()) if store.is_dir() else []:
        iters = [checkpoint_iter(c) for c in list_checkpoints(path)]
        runs.append(
            RunInfo(
                path.name, path, _size(path), path.stat().st_mtime, max(iters, default=None), path.resolve() == current
            )
        )
    return sorted(runs, key=lambda r: r.modified)


def remove_runs(root: str | Path, names: Sequence[str], force: bool = False) -> list[Path]:
    """Delete the named runs of ``root``; all names are checked before anything is removed.
    The current run (named by train.json) is refused unless ``force``."""
    runs = {r.name: r for r in list_runs(root)}
    unknown = [n for n in names if n not in runs]
    if unknown:
        raise ValueError(f"{root}: no run named {', '.join(unknown)} (runs: {', '.join(runs) or 'none'})")
    current = [n for n in names if runs[n].current]
    if current and not force:
        raise ValueError(f"{root}: {current[0]} is the current run (train.json names it); pass --force to remove it")
    for name in names:
        shutil.rmtree(runs[name].path)
    return [runs[n].path for n in names]


def _human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def _model_roots(models_dir: Path, models: Sequence[str]) -> list[Path]:
    """The run stores of ``models``, or of every model folder in ``models_dir``."""
    if not models and models_dir.is_dir():
        models = sorted(p.name for p in models_dir.iterdir() if (p / "train").is_dir())
    return [models_dir / m / "train" for m in models]


def _print_runs(root: Path) -> None:
    for run in list_runs(root):
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.modified))
        last = "-" if run.last_iter is None else run.last_iter
        print(
            f"{root.parent.name:<20} {run.name:<18} {_human(run.bytes):>9}  {when}  iter {last:<8}"
            f"{' current' if run.current else ''}"
        )
    for old in legacy_work_dirs(root):
        print(
            f"{root.parent.name:<20} {old} holds a run of the layout before runs/; "
            "the model's next train job moves it into runs/"
        )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="faceparse-runs",
        description="List a project's stored training runs, or remove the ones you name.",
        epilog="exit status: 0 done; 2 a model, run or folder that cannot be found or removed. Docs: docs/training.md",
    )
    ap.add_argument(
        "--models-dir",
        type=Path,
        default=Path("results/models"),
        metavar="DIR",
        help="the project's models folder (default: results/models)",
    )
    sub = ap.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="every run of every model (or of the models named): size, date, last iteration")
    ls.add_argument("models", nargs="*", help="the models to list (default: all)")
    rm = sub.add_parser("remove", help="delete the named runs of one model")
    rm.add_argument("model", help="the model whose runs to remove")
    rm.add_argument("runs", nargs="+", help="run names as `list` shows them")
    rm.add_argument("--force", action="store_true", help="also remove the current run")
    args = ap.parse_args(argv)
    try:
        if args.command == "remove":
            for path in remove_runs(args.models_dir / args.model / "train", args.runs, args.force):
                print(f"removed {path}")
            return 0
        for root in _model_roots(args.models_dir, args.models):
            _print_runs(root)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Provenance: exactly which data, code, config and checkpoint produced a result.

- :func:`dataset_fingerprint` — sha256 over the sorted ``(relative name, size,
  content sha256)`` of every image and mask listed in
  ``results/data/validation.json`` (names relative to the split, e.g.
  ``val/images/00012.jpg``, so moving the dataset keeps its fingerprint; any
  renamed, added, removed or changed file changes it). Hashed in parallel.
- :func:`git_state` / :func:`code_fingerprint` / :func:`code_state` — the git
  commit, whether the working tree differs from it (modified or untracked
  files), and a sha256 over the code that runs (``src/``, ``workflow/``,
  ``configs/``, the lock file), which also changes with uncommitted edits.
- :func:`package_versions` — installed versions (``importlib.metadata``).
- :func:`checkpoint_record`, :func:`file_record` — paths, sizes and sha256.
- :func:`read_benchmarks` — per-step run times from Snakemake's ``benchmark:`` TSVs.
- :func:`build_provenance` / :func:`write_provenance` — all of it as one JSON
  record (``results/provenance/provenance.json``) plus an HTML view.

This module imports nothing heavy at import time: the workflow imports it to
compute :func:`code_state` while it builds the DAG.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from faceparse.parallel import parallel_map
from faceparse.records import Selection, TrainSummary, read_index, read_json, sha256_file, split_files, write_json
from faceparse.report.tables import provenance_html

log = logging.getLogger(__name__)

__all__ = [
    "CODE_PATHS",
    "PACKAGES",
    "sha256_file",
    "dataset_files",
    "dataset_fingerprint",
    "git_state",
    "code_files",
    "code_fingerprint",
    "code_state",
    "package_versions",
    "environment",
    "file_record",
    "checkpoint_record",
    "read_benchmark",
    "read_benchmarks",
    "build_provenance",
    "write_provenance",
]

# What counts as "the code" (relative to the repository root).
CODE_PATHS: tuple[str, ...] = ("src", "workflow", "configs", "pyproject.toml", "requirements.lock", "Makefile")
# "All the code" of the later editions' grading zip: the project, its tests, tools and docs (in a git
# checkout the tracked and untracked-but-not-ignored files under these: never results or environments).
SUBMISSION_CODE_PATHS: tuple[str, ...] = (
    *CODE_PATHS,
    "README.md",
    "LICENSE",
    "CHANGELOG.md",
    "requirements.in",
    "config.yaml",
    "profiles",
    "tools",
    "tests",
    "bench",
    "mkdocs.yml",
    "docs",
)

# The packages whose versions decide the numbers.
PACKAGES: tuple[str, ...] = (
    "torch",
    "torchvision",
    "mmcv",
    "mmengine",
    "mmsegmentation",
    "timm",
    "numpy",
    "pillow",
    "opencv-python",
    "simplejpeg",
    "turbojpeg",
    "matplotlib",
    "PyYAML",
    "tqdm",
    "snakemake",
    "faceparse",
)

_SKIP_DIRS = {"__pycache__", ".snakemake", ".git", ".pytest_cache"}


# ----------------------------------------------------------------------------- hashing


def _fingerprint(records: Iterable[tuple[str, int, str]]) -> str:
    """sha256 over ``name\\tsize\\tsha256\\n`` lines sorted by name."""
    h = hashlib.sha256()
    for name, size, digest in sorted(records):
        h.update(f"{name}\t{size}\t{digest}\n".encode())
    return h.hexdigest()


def _file_hash_record(item: tuple[str, str]) -> tuple[str, int, str]:
    """``(relative name, size, sha256)`` of one file (a parallel_map worker)."""
    name, path = item
    return name, os.path.getsize(path), sha256_file(path)


def _files(paths: Iterable[str | Path]) -> list[Path]:
    """The files among ``paths``, a folder standing for every file under it (missing paths skipped)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(f for f in path.rglob("*") if f.is_file())
        elif path.is_file():
            files.append(path)
    return files


def file_record(path: str | Path) -> dict:
    path = Path(path)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": sha256_file(path)}


# ----------------------------------------------------------------------------- data


def dataset_files(validation_json: str | Path) -> list[tuple[str, str, str]]:
    """``(split, relative name, path)`` of every image and mask in the dataset index."""
    index = read_index(validation_json)
    out = []
    for split in index["splits"]:
        files = split_files(validation_json, split)
        for image in files.images:
            out.append((split, f"{split}/images/{Path(image).name}", image))
        for mask in files.masks or ():
            out.append((split, f"{split}/masks/{Path(mask).name}", mask))
    return out


def dataset_fingerprint(validation_json: str | Path, threads: int = 1) -> dict:
    """``{"sha256", "files", "bytes", "splits": {split: {"sha256", "files", "bytes"}}}``."""
    files = dataset_files(validation_json)
    records = list(
        parallel_map(_file_hash_record, [(name, path) for _, name, path in files], threads, desc="dataset fingerprint")
    )
    by_split: dict[str, list[tuple[str, int, str]]] = {}
    for (split, _, _), record in zip(files, records):
        by_split.setdefault(split, []).append(record)
    return {
        "sha256": _fingerprint(records),
        "files": len(records),
        "bytes": sum(r[1] for r in records),
        "splits": {
            s: {"sha256": _fingerprint(r), "files": len(r), "bytes": sum(x[1] for x in r)} for s, r in by_split.items()
        },
    }


# ----------------------------------------------------------------------------- code


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def _git_toplevel(root: Path) -> Path | None:
    top = _git(root, "rev-parse", "--show-toplevel")
    return Path(top.strip()) if top else None


def git_state(root: str | Path) -> dict:
    """``{"commit", "branch", "dirty", "changed", "changed_count"}`` of the checkout at ``root``.

    ``dirty`` is True when any tracked file differs from the commit or any
    untracked (not ignored) file exists; ``changed`` lists them (up to 100).
    Outside a git checkout every value is None.
    """
    root = Path(root)
    if _git_toplevel(root) is None:
        return {"commit": None, "branch": None, "dirty": None, "changed": [], "changed_count": 0}
    commit = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=all") or ""
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    return {
        "commit": commit.strip() if commit else None,
        "branch": branch.strip() if branch and commit else None,
        "dirty": bool(changed),
        "changed": changed[:100],
        "changed_count": len(changed),
    }


def code_files(root: str | Path, paths: Sequence[str] = CODE_PATHS) -> list[str]:
    """The code files under ``paths`` (relative to ``root``, sorted): in a git checkout the tracked
    and untracked-but-not-ignored ones, else every file but caches."""
    root = Path(root)
    present = [p for p in paths if (root / p).exists()]
    if not present:
        return []
    if _git_toplevel(root) is not None:
        listed = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *present)
        if listed is not None:
            return sorted({f for f in listed.split("\0") if f and (root / f).is_file()})
    found = []
    for p in present:
        target = root / p
        if target.is_file():
            found.append(p)
            continue
        for dirpath, dirnames, filenames in os.walk(target):
            dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.endswith(".egg-info")]
            for name in filenames:
                if not name.endswith((".pyc", ".pyo")):
                    found.append(str((Path(dirpath) / name).relative_to(root)))
    return sorted(found)


def code_fingerprint(root: str | Path, paths: Sequence[str] = CODE_PATHS) -> dict:
    """``{"sha256", "files", "paths"}``: sha256 over the sorted (path, size, content sha256) of the code."""
    root = Path(root)
    files = code_files(root, paths)
    records = [_file_hash_record((f, str(root / f))) for f in files]
    return {"sha256": _fingerprint(records), "files": len(records), "paths": [p for p in paths if (root / p).exists()]}


def submission_code_state(root: str | Path, git: Mapping | None = None) -> dict:
    """The git commit and dirty flag of ``root`` (from ``git``, a :func:`git_state` or
    :func:`code_state` already taken, or taken here) and the fingerprint of the files the grading zip
    packs (:data:`SUBMISSION_CODE_PATHS`): the grading rule's param, so that an edit of any of them
    remakes the zip."""
    git = git if git is not None else git_state(root)
    code = code_fingerprint(root, SUBMISSION_CODE_PATHS)
    return {"commit": git["commit"], "dirty": git["dirty"], "code_sha256": code["sha256"], "code_files": code["files"]}


def code_state(root: str | Path) -> dict:
    """The git state and code fingerprint of ``root``, plus the Snakemake version: what the
    provenance rule takes as params, so that it reruns whenever any of them changes."""
    state = git_state(root)
    code = code_fingerprint(root)
    state.update(code_sha256=code["sha256"], code_files=code["files"], code_paths=code["paths"])
    try:
        state["snakemake"] = importlib.metadata.version("snakemake")
    except importlib.metadata.PackageNotFoundError:
        state["snakemake"] = None
    return state


# ----------------------------------------------------------------------------- environment


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment(names: Iterable[str] = PACKAGES) -> dict:
    env = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    if "torch" in sys.modules or importlib.util.find_spec("torch") is not None:
        try:
            import torch

            env["torch_cuda"] = torch.version.cuda
            env["cuda_available"] = bool(torch.cuda.is_available())
            if env["cuda_available"]:
                env["gpu"] = torch.cuda.get_device_name(0)
        except Exception as exc:  # noqa: BLE001 - provenance must not fail on a broken torch
            env["torch_error"] = repr(exc)
    env["packages"] = package_versions(names)
    return env


# ----------------------------------------------------------------------------- models and runs


def checkpoint_record(best_json: str | Path, train_json: str | Path) -> dict:
    """The selected checkpoint (path, iteration, size, sha256) and the resolved mmseg config it ran with."""
    best = Selection.read(best_json)
    train = TrainSummary.read(train_json)
    record = {
        "iter": best.iter,
        "select_mIoU": best.mIoU,
        "select_metric": best.metric,
        "select_score": best.score,
        "parameters": train.parameters,
        "max_iters": train.max_iters,
        "work_dir": train.work_dir,
        "checkpoint": file_record(best.checkpoint),
        "val_during_training": train.val,
    }
    config = train.config
    if config and Path(config).is_file():
        record["resolved_config"] = file_record(config) | {"text": Path(config).read_text()}
    else:
        record["resolved_config"] = {"path": config}
    return record


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def read_benchmark(path: str | Path) -> dict | None:
    """One ``benchmark:`` TSV: mean wall-clock seconds over its repeats (``s``), the last
    ``h:m:s``, max RSS (MB), CPU seconds, the number of runs and when it was written; None
    when it holds no timing."""
    path = Path(path)
    lines = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    header, rows = lines[0], lines[1:]
    cols = {name: [_number(r[i]) for r in rows if i < len(r)] for i, name in enumerate(header)}

    def mean(name: str) -> float | None:
        vals = [v for v in cols.get(name, []) if v is not None]
        return sum(vals) / len(vals) if vals else None

    seconds = mean("s")
    if seconds is None:
        return None
    return {
        "s": seconds,
        "h:m:s": rows[-1][header.index("h:m:s")] if "h:m:s" in header else None,
        "max_rss": mean("max_rss"),
        "cpu_time": mean("cpu_time"),
        "runs": len(rows),
        "finished": _dt.datetime.fromtimestamp(path.stat().st_mtime).isoformat(timespec="seconds"),
    }


def read_benchmarks(bench_dir: str | Path) -> list[dict]:
    """:func:`read_benchmark` of every TSV under ``bench_dir``, with its step (the path
    without ``.tsv``)."""
    bench_dir = Path(bench_dir)
    steps = []
    for path in sorted(bench_dir.rglob("*.tsv")) if bench_dir.is_dir() else []:
        record = read_benchmark(path)
        if record is not None:
            steps.append({"step": str(path.relative_to(bench_dir).with_suffix("")), **record})
    return steps


def _val_summary(metrics_json: str | Path | None) -> dict:
    if not metrics_json or not Path(metrics_json).is_file():
        return {}
    metrics = read_json(metrics_json)
    return {
        "mIoU_no_tta": metrics.get("no_tta", {}).get("mIoU"),
        "mIoU_tta": metrics.get("tta", {}).get("mIoU"),
        "mF1_no_tta": metrics.get("no_tta", {}).get("mF1"),
        "mF1_tta": metrics.get("tta", {}).get("mF1"),
        "tta_config": metrics.get("tta_config"),
        "train_on_val": metrics.get("train_on_val"),
    }


def _submission(files: Mapping) -> dict:
    """The zip's file record with its check (without the list of names)."""
    record = file_record(files["zip"])
    if files.get("check") and Path(files["check"]).is_file():
        record["check"] = read_json(files["check"])
        record["check"].pop("names", None)
    return record


def build_provenance(
    *,
    validation_json: str | Path,
    stats_json: str | Path,
    models: Mapping[str, Mapping],
    config: Mapping,
    code: Mapping,
    bench_dir: str | Path = "benchmarks",
    outputs: Iterable[str | Path] = (),
    source_json: str | Path | None = None,
    ensembles: Mapping[str, Mapping] | None = None,
    deliverables: Mapping[str, Mapping[str, str | Path]] | None = None,
    threads: int = 1,
) -> dict:
    """The provenance record.

    ``models`` maps a model name to its files: ``train`` (train.json), ``best``
    (best.json), and optionally ``metrics`` (val_metrics.json), ``zip`` and
    ``check`` (the submission); ``ensembles`` an ensemble's name to its ``metrics``,
    ``zip`` and ``check``. ``code`` is :func:`code_state` as the workflow
    computed it; ``config`` the resolved (schema-validated) workflow config.
    ``outputs`` are files or folders (a solution folder: each file in it) to hash.
    ``deliverables`` maps a model to the check records of its later-editions deliverables
    (``masks``: the masks archive's check, ``solution``: the parity, ``grading``: the grading zip's).
    """
    index = read_index(validation_json)
    data = {
        "layout": index.get("layout"),
        "root": index.get("root"),
        "index": file_record(validation_json),
        "images": {s: e.get("images", len(e.get("names", []))) for s, e in index["splits"].items()},
        "stats": read_json(stats_json),
    }
    data.update(dataset_fingerprint(validation_json, threads=threads))
    if source_json and Path(source_json).is_file():
        data["source"] = read_json(source_json)
    model_records = {}
    for name, files in models.items():
        record = {"config_file": config.get("models", {}).get(name, {}).get("config")}
        record.update(checkpoint_record(files["best"], files["train"]))
        record["val"] = _val_summary(files.get("metrics"))
        if files.get("zip"):
            record["submission"] = _submission(files)
        record["deliverables"] = {
            part: read_json(path) for part, path in ((deliverables or {}).get(name) or {}).items()
        }
        model_records[name] = record
    ensemble_records = {}
    for name, files in (ensembles or {}).items():
        metrics = read_json(files["metrics"])
        ensemble_records[name] = {
            "members": metrics.get("ensemble", {}).get("members"),
            "val": _val_summary(files["metrics"]),
            "submission": _submission(files) if files.get("zip") else None,
        }
    try:
        import yaml

        config_yaml = yaml.safe_dump(json.loads(json.dumps(config)), sort_keys=False)
    except ImportError:
        config_yaml = None
    return {
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "code": {
            "commit": code.get("commit"),
            "branch": code.get("branch"),
            "dirty": code.get("dirty"),
            "changed": list(code.get("changed", [])),
            "changed_count": code.get("changed_count", 0),
            "sha256": code.get("code_sha256"),
            "files": code.get("code_files"),
            "paths": list(code.get("code_paths", [])),
            "snakemake": code.get("snakemake"),
        },
        "config": json.loads(json.dumps(config)),
        "config_yaml": config_yaml,
        "data": data,
        "models": model_records,
        "ensembles": ensemble_records,
        "environment": environment(),
        "runtimes": read_benchmarks(bench_dir),
        "outputs": {str(f): {k: v for k, v in file_record(f).items() if k != "path"} for f in _files(outputs)},
    }


def write_provenance(
    *, json_out: str | Path, html_out: str | Path | None = None, runtimes_png: str | Path | None = None, **kwargs
) -> dict:
    """:func:`build_provenance`, written as JSON (+ an HTML view and a run-time chart)."""
    prov = build_provenance(**kwargs)
    write_json(json_out, prov)
    if html_out is not None:
        Path(html_out).parent.mkdir(parents=True, exist_ok=True)
        Path(html_out).write_text(provenance_html(prov))
    if runtimes_png is not None:
        # deferred: matplotlib takes a second to import, and the workflow imports this module
        # (code_state) every time it builds the DAG
        from faceparse.report.figures import runtimes_figure

        runtimes_figure(prov["runtimes"], runtimes_png)
    log.info(
        "provenance: commit %s (dirty %s), data %s, %d models",
        prov["code"]["commit"],
        prov["code"]["dirty"],
        prov["data"]["sha256"][:16],
        len(prov["models"]),
    )
    return prov

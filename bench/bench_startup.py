"""Start-up cost of the workflow: `snakemake -n` with the challenge's rules on, warm and cold.

Under ``rules.max_params`` the start-up check counts every model's parameters; the count is
cached with the models' other facts (``faceparse.model_facts``), so a warm dry-run imports neither
torch nor mmengine. Times, best of
``--repeat``, for each checkout given with ``--code`` (its ``workflow/Snakefile`` and its own
``src/``, e.g. a ``git worktree`` of an earlier commit for "before"):

- ``demo``   a dry-run in ``--demo DIR``, a finished demo project (its ``config.yaml``, the
             rules on), planning nothing;
- ``mini``   a dry-run of the whole DAG on a made-up mini root of N train images (+ N/10 val
             and test, empty files) with the demo's model and rules;

each with the cache cold (removed before every run) and warm (kept from the run before), and
whether torch was imported (``python -X importtime``). Usage::

    git worktree add /tmp/before HEAD~1
    python bench/bench_startup.py --demo /path/to/finished/demo --code /tmp/before --code .
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_plan import make_root  # noqa: E402 - the bench folder is not a package

ROOT = Path(__file__).resolve().parents[1]
# the model facts' cache (and the parameter counts' of the commit before it)
CACHES = [Path(".snakemake") / "faceparse" / name for name in ("model_facts.json", "parameter_counts.json")]


def dry_run(code: Path, workdir: Path, importtime: bool = False) -> tuple[float, bool]:
    """Seconds of one `snakemake -n` in ``workdir`` with ``code``'s Snakefile, and whether it
    imported torch (only looked at with ``importtime``)."""
    cmd = [
        sys.executable,
        *(["-X", "importtime"] if importtime else []),
        "-m",
        "snakemake",
        "-n",
        "-q",
        "-s",
        str(code / "workflow" / "Snakefile"),
        "-d",
        str(workdir),
        "--cores",
        "2",
    ]
    start = time.perf_counter()
    result = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(code / "src")},
    )
    elapsed = time.perf_counter() - start
    if result.returncode:
        raise RuntimeError(f"snakemake -n failed in {workdir}:\n{result.stderr[-3000:]}")
    torch = re.search(r"^import time:.*\|\s+torch$", result.stderr, re.M) is not None
    return elapsed, torch


def measure(code: Path, workdir: Path, repeat: int) -> dict:
    def clear() -> None:
        for cache in CACHES:
            (workdir / cache).unlink(missing_ok=True)

    out = {}
    for state in ("cold", "warm"):
        times = []
        for _ in range(repeat):
            if state == "cold":
                clear()
            else:
                dry_run(code, workdir)  # fills the cache (a no-op for code without one)
            times.append(dry_run(code, workdir)[0])
        if state == "cold":
            clear()
        else:
            dry_run(code, workdir)
        out[state] = {
            "best_s": round(min(times), 2),
            "runs_s": [round(t, 2) for t in times],
            "imports_torch": dry_run(code, workdir, importtime=True)[1],
        }
    return out


def mini_project(base: Path, n_train: int) -> Path:
    """A project folder whose config is the demo's (rules on) on a mini root of n_train images."""
    root = make_root(base, n_train)
    demo = yaml.safe_load((ROOT / "config.yaml").read_text())
    config = {
        "data_layout": "mini",
        "data_root": str(root),
        "rules": demo["rules"],
        "selection": demo["selection"],
        "models": demo["models"],
    }
    workdir = base / f"project{n_train}"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return workdir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", type=Path, help="a finished demo project folder (skipped if not given)")
    parser.add_argument("--code", type=Path, action="append", help="checkouts to time (default: this one)")
    parser.add_argument("--images", type=int, default=30000, help="train images of the mini root (default 30000)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("results/bench/bench_startup.json"))
    args = parser.parse_args()
    codes = [c.resolve() for c in (args.code or [ROOT])]
    base = Path(tempfile.mkdtemp(prefix="bench_startup_"))
    try:
        projects = {"mini": mini_project(base, args.images)}
        if args.demo:
            projects = {"demo": args.demo.resolve(), **projects}
        report = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "load": os.getloadavg()[0],
            "images": args.images,
            "results": {},
        }
        for code in codes:
            for name, workdir in projects.items():
                got = measure(code, workdir, args.repeat)
                report["results"][f"{code} {name}"] = got
                print(
                    f"{str(code):<40} {name:<5} cold {got['cold']['best_s']:6.2f} s "
                    f"(torch {got['cold']['imports_torch']})  warm {got['warm']['best_s']:6.2f} s "
                    f"(torch {got['warm']['imports_torch']})",
                    flush=True,
                )
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

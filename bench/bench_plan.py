"""Planning cost of a large `mini` dataset: `snakemake -n` and the dataset fingerprint in it.

Makes a mini-layout root of N train images (+ N/10 val and test; empty files: planning never
reads them), then times, best of --repeat:

- ``fingerprint``   faceparse.data.fingerprint.listing_fingerprint(root) alone (the param that
                    makes validate rerun when a file under the root changes);
- ``snakemake -n``  a dry run of the whole DAG on that root with the demo model, the
                    fingerprint included (the budget: <= 3 s for 30000 images on 2 cores);
- ``snakemake -n``  the same for a 3-image root, i.e. what planning costs without the files.

Usage::

    python bench/bench_plan.py 30000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from faceparse.data.fingerprint import listing_fingerprint

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def make_root(base: Path, n_train: int) -> Path:
    root = base / f"mini{n_train}"
    counts = {"train": n_train, "val": max(1, n_train // 10), "test": max(1, n_train // 10)}
    for split, n in counts.items():
        for kind, suffix in (("images", ".jpg"), ("masks", ".png")):
            if split == "test" and kind == "masks":
                continue
            folder = root / split / kind
            folder.mkdir(parents=True)
            for i in range(n):
                (folder / f"{i:06d}{suffix}").touch()
    return root


def dry_run_seconds(workdir: Path, root: Path) -> float:
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "data_layout": "mini",
        "data_root": str(root),
        "models": {"demo_tiny": {"config": "configs/demo_tiny.py"}},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [
        str(SNAKEMAKE),
        "-n",
        "-q",
        "-s",
        str(ROOT / "workflow" / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        "--cores",
        "2",
    ]
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - start
    if result.returncode:
        raise RuntimeError(f"snakemake -n failed:\n{result.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", nargs="?", type=int, default=30000, help="train images (default 30000)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("results/bench/bench_plan.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_plan_"))
    try:
        big, small = make_root(work, args.n), make_root(work, 3)
        files = sum(1 for _ in big.glob("*/*/*"))
        timings = {}
        for name, fn in (
            ("fingerprint", lambda: listing_fingerprint(big)),
            ("snakemake -n", lambda: dry_run_seconds(work / "run_big", big)),
            ("snakemake -n, 3 images", lambda: dry_run_seconds(work / "run_small", small)),
        ):
            runs = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                fn()
                runs.append(time.perf_counter() - start)
            timings[name] = min(runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\nplanning a mini root of {args.n} train images ({files} files; {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}), best of {args.repeat}:"
    )
    for name, seconds in timings.items():
        print(f"  {name:<24} {seconds:6.2f} s")
    result = {
        "n": args.n,
        "files": files,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "platform": platform.platform(),
        "seconds": timings,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

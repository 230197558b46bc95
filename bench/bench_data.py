"""Data-step cost: validate, flip and stats against a plain parallel decode of the same files.

Generates a synthetic set (N train images at --size, plus N/20 val and test images), then times,
with the same number of worker processes:

- ``validate``  every image and mask of every split (checks, strict JPEG decode, class and pixel
                histograms) vs decoding those images and masks;
- ``flip``      every train image (lossless DCT flip) and mask vs decoding them;
- ``stats``     every train image vs decoding them (it sums the histograms validate recorded);
- all three     together vs decoding what each of them reads (the data-step budget: <= 3.0x),
                and vs decoding every file once.

The baseline is ``PIL.Image.open(path).load()`` of each file through the same process pool
(faceparse.parallel.parallel_map), so a ratio near 1 means the step costs what decoding costs.
Each timing is the best of --repeat runs (files are in the page cache after generation).
Prints a table and writes JSON.

Usage::

    python bench/bench_data.py 2000 --threads 2
    python bench/bench_data.py 500 --json results/bench/data_500.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from faceparse.data.flip import flip_dataset
from faceparse.data.stats import channel_stats
from faceparse.data.synthetic import generate_dataset
from faceparse.data.validate import validate_dataset
from faceparse.parallel import parallel_map
from faceparse.records import split_files


def _decode(path: str) -> tuple[int, int]:
    with Image.open(path) as im:
        im.load()
        return im.size


def _decode_all(paths: list[str], threads: int) -> None:
    for _ in parallel_map(_decode, paths, threads, "decode"):
        pass


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", nargs="?", type=int, default=2000, help="train images (default 2000)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=2, help="runs per timing; the best counts")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the data here (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=Path("results/bench/bench_data.json"))
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_data_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        small = max(2, args.n // 20)
        counts = {"train": args.n, "val": small, "test": small}
        start = time.perf_counter()
        generate_dataset(work / "data", counts, size=args.size, seed=0, threads=args.threads)
        generate_s = time.perf_counter() - start

        index = work / "validation.json"
        validate_s = _best(lambda: validate_dataset(work / "data", "synthetic", index, args.threads), args.repeat)
        splits = {s: split_files(index, s) for s in counts}

        def run_flip() -> None:
            shutil.rmtree(work / "flipped", ignore_errors=True)
            flip_dataset(index, work / "flipped", work / "flip.json", args.threads)

        flip_s = _best(run_flip, args.repeat)
        stats_s = _best(lambda: channel_stats(index, work / "stats.json"), args.repeat)

        all_files = [p for f in splits.values() for p in f.images + (f.masks or ())]
        train = splits["train"]
        base = {
            "validate": _best(lambda: _decode_all(all_files, args.threads), args.repeat),
            "flip": _best(lambda: _decode_all(list(train.images + train.masks), args.threads), args.repeat),
            "stats": _best(lambda: _decode_all(list(train.images), args.threads), args.repeat),
        }
        rows = [
            ("generate", sum(counts.values()), "images+masks written", generate_s, None),
            ("validate", len(all_files), "all images+masks", validate_s, base["validate"]),
            ("flip", len(train.images) * 2, "train images+masks", flip_s, base["flip"]),
            ("stats", len(train.images), "train images", stats_s, base["stats"]),
            # The budget (<= 3.0x): the three steps against decoding what each of them reads.
            (
                "all three",
                len(all_files) + 3 * len(train.images),
                "validate+flip+stats",
                validate_s + flip_s + stats_s,
                base["validate"] + base["flip"] + base["stats"],
            ),
            ("  vs once", len(all_files), "each file decoded once", validate_s + flip_s + stats_s, base["validate"]),
        ]
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    print(
        f"\ndata steps, {args.n} train images at {args.size}x{args.size}, {args.threads} processes "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})"
    )
    print(f"{'step':<10} {'files':>6}  {'what':<22} {'seconds':>8} {'decode s':>9} {'ratio':>6}")
    for step, files, what, secs, baseline in rows:
        b = f"{baseline:9.2f}" if baseline is not None else " " * 9
        r = f"{secs / baseline:6.2f}" if baseline else " " * 6
        print(f"{step:<10} {files:>6}  {what:<22} {secs:8.2f} {b} {r}")
    result = {
        "n": args.n,
        "size": args.size,
        "threads": args.threads,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "platform": platform.platform(),
        "rows": [
            {
                "step": s.strip(" +"),
                "files": f,
                "what": w,
                "seconds": sec,
                "decode_seconds": b,
                "ratio": sec / b if b else None,
            }
            for s, f, w, sec, b in rows
        ],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

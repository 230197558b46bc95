"""Does the optional clean-up of TTA masks help? mF1 and mIoU with and without it, on two face sets.

- ``val``       a finished project's val TTA masks (``results/models/MODEL/val_pred``, made with
                ``postprocess`` off) against the val masks;
- ``held-out``  ``--held-out`` synthetic faces of a geometry the pipeline never generates
                (``HELD_OUT_FRAMING``, as bench_compact.py), parsed with TTA by ``faceparse-parse``
                from the model's ``best.json``;

each scored as predicted and after :func:`faceparse.predict.postprocess.postprocess` for every
``min_area`` x ``majority`` of the grid (the bench's own numpy scorer, bench_compact.scores), with
the milliseconds the clean-up takes per mask. Usage (after ``make demo``)::

    python bench/bench_postprocess.py --model compact --held-out 100
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from faceparse.labels import NUM_CLASSES
from faceparse.predict.postprocess import postprocess

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_compact import ROOT, held_out_set, parse_held_out, scores  # noqa: E402 - the bench folder is not a package

MIN_AREAS = (0, 25, 100, 400)
MAJORITY = (0, 3, 5)


def pairs(pred_dir: Path, masks_dir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(prediction, truth) of every mask in ``masks_dir``."""
    return [
        (np.asarray(Image.open(pred_dir / truth.name)), np.asarray(Image.open(truth)))
        for truth in sorted(masks_dir.glob("*.png"))
    ]


def score(items: list[tuple[np.ndarray, np.ndarray]], min_area: int, majority: int) -> dict:
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    start = time.perf_counter()
    for pred, truth in items:
        pred = postprocess(pred, min_area, majority).astype(np.int64)
        keep = truth < NUM_CLASSES
        matrix += np.bincount(
            truth[keep].astype(np.int64) * NUM_CLASSES + pred[keep], minlength=NUM_CLASSES**2
        ).reshape(NUM_CLASSES, NUM_CLASSES)
    ms = 1000 * (time.perf_counter() - start) / max(len(items), 1)
    return {**scores(matrix), "ms_per_mask": ms}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="compact")
    ap.add_argument("--configfile", type=Path, default=ROOT / "config.yaml", help="the project's config (its TTA)")
    ap.add_argument("--held-out", type=int, default=100, help="held-out faces to score (0: none)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "postprocess.json")
    args = ap.parse_args(argv)
    model_dir = ROOT / "results" / "models" / args.model
    metrics = json.loads((model_dir / "val_metrics.json").read_text())
    if metrics.get("postprocess"):
        raise SystemExit(f"{model_dir}: its val masks are cleaned already (postprocess on): run with it off")
    validation = json.loads((ROOT / "results" / "data" / "validation.json").read_text())
    sets = {"val": pairs(model_dir / "val_pred", Path(validation["splits"]["val"]["mask_dir"]))}
    if args.held_out:
        held_out = held_out_set(args.out.parent, args.held_out)
        pred_dir = args.out.parent / "held_out_pred" / args.model
        parse_held_out(model_dir / "best.json", args.configfile, held_out, pred_dir)
        sets["held-out"] = pairs(pred_dir, held_out / "masks")
    rows = []
    for min_area, majority in itertools.product(MIN_AREAS, MAJORITY):
        row = {"min_area": min_area, "majority": majority}
        for name, items in sets.items():
            row[name] = score(items, min_area, majority)
        rows.append(row)
        cells = "  ".join(f"{n} mF1 {row[n]['mF1']:.2f} mIoU {row[n]['mIoU']:.2f}" for n in sets)
        print(f"min_area {min_area:>4} majority {majority}  {cells}  {row['val']['ms_per_mask']:.1f} ms", flush=True)
    report = {
        "model": args.model,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "images": {name: len(items) for name, items in sets.items()},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

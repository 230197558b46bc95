"""The compact model against plain baselines at the later editions' budget (< 1,821,085 parameters).

For each model config (default: ``configs/compact.py``, the demo's network;
``configs/compact_large.py``, the same network file at GPU widths; mmseg's Fast-SCNN and a small
UNet, all trained with the same data, augmentation, loss and 1600-iteration schedule; and the small
UNet again at equal CPU time: a full 440-iteration schedule, which costs about what the compact
model's 1600 iterations do):

1. **train, select, evaluate** through the pipeline itself (Snakemake, the demo's synthetic
   set from ``--configfile``; a model already trained there is reused);
2. **parameters** as the challenge counts them, **FLOPs** of one forward pass at the test size
   and **CPU seconds per training iteration** (``bench/bench_train.py``: model + optimizer
   step, one fixed batch at the config's crop size and batch size, no data loading);
3. **scores by an independent scorer** (this file's numpy confusion matrix, not faceparse's
   metrics): on the pipeline's own val predictions (TTA), and on ``--held-out`` synthetic faces
   of a geometry the pipeline never generates (``HELD_OUT_FRAMING``: smaller and larger heads,
   more roll and yaw, further off centre), predicted with ``faceparse-parse`` (same TTA).

mIoU is the mean over classes present in the truth or the prediction; mF1 the mean F1 over the
18 foreground classes present (the later editions' F-score), both over the split's pixels.

Usage::

    python bench/bench_compact.py --out results/bench/compact.json
    python bench/bench_compact.py --models compact --held-out 100
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MODELS = {
    "compact": "configs/compact.py",
    "compact_large": "configs/compact_large.py",
    "bench_fast_scnn": "configs/baselines/fast_scnn.py",
    "bench_unet_small": "configs/baselines/unet_small.py",
    "bench_unet_small_equal_time": "configs/baselines/unet_small_equal_time.py",
}
NUM_CLASSES = 19


def confusion(pred_dir: Path, truth_dir: Path) -> np.ndarray:
    """19x19 pixel counts (truth row, prediction column) over every truth mask's image."""
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    truths = sorted(truth_dir.glob("*.png"))
    if not truths:
        raise SystemExit(f"bench_compact: no masks in {truth_dir}")
    for truth_path in truths:
        truth = np.asarray(Image.open(truth_path)).astype(np.int64)
        pred = np.asarray(Image.open(pred_dir / truth_path.name)).astype(np.int64)
        if pred.shape != truth.shape:
            raise SystemExit(f"bench_compact: {pred_dir / truth_path.name} is {pred.shape}, its truth {truth.shape}")
        keep = truth < NUM_CLASSES  # 255: ignored
        matrix += np.bincount(truth[keep] * NUM_CLASSES + pred[keep], minlength=NUM_CLASSES**2).reshape(
            NUM_CLASSES, NUM_CLASSES
        )
    return matrix


def scores(matrix: np.ndarray) -> dict[str, float]:
    tp = np.diag(matrix).astype(float)
    truth, pred = matrix.sum(1), matrix.sum(0)
    present = (truth + pred) > 0
    iou = tp[present] / (truth + pred - tp)[present]
    f1 = 2 * tp / np.maximum(truth + pred, 1)
    foreground = present.copy()
    foreground[0] = False
    return {
        "mIoU": 100 * float(iou.mean()),
        "mF1": 100 * float(f1[foreground].mean()),
        "aAcc": 100 * float(tp.sum() / matrix.sum()),
    }


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def train_and_evaluate(models: dict[str, str], configfile: Path, bench_config: Path, cores: int) -> None:
    config = yaml.safe_load(configfile.read_text())
    config["models"] = {name: {"config": path, "gpus": 0} for name, path in models.items()}
    config.pop("ensembles", None)
    bench_config.parent.mkdir(parents=True, exist_ok=True)
    bench_config.write_text(yaml.safe_dump(config, sort_keys=False))
    targets = [f"results/models/{name}/val_metrics.json" for name in models]
    run(
        [
            str(BIN / "snakemake"),
            *targets,
            "--configfile",
            str(bench_config),
            "--cores",
            str(cores),
            "--resources",
            "gpu=0",
        ]
    )


def speed_and_flops(name: str, config: str, out_dir: Path) -> dict:
    out = out_dir / f"train_{name}.json"
    run([sys.executable, "bench/bench_train.py", config, "--iters", "10", "--warmup", "3", "--out", str(out)])
    result = json.loads(out.read_text())
    return {
        "s_per_iter": result["seconds_per_iter"]["median"],
        "batch": result["batch_size"],
        "crop": result["crop_size"],
        "gflops_forward": result["flops"]["forward_per_image"] / 1e9,
    }


def held_out_set(out_dir: Path, count: int) -> Path:
    from faceparse.data.synthetic.faces import HELD_OUT_FRAMING, generate_dataset

    root = out_dir / "held_out"
    if not (root / "test" / "masks").is_dir() or len(list((root / "test" / "masks").glob("*.png"))) != count:
        generate_dataset(root, {"test": count}, size=512, seed=1, threads=2, framing=HELD_OUT_FRAMING)
    return root / "test"


def parse_held_out(best_json: Path, configfile: Path, held_out: Path, pred_dir: Path) -> None:
    """The held-out images parsed with TTA by ``faceparse-parse`` from a model's best.json into pred_dir."""
    run(
        [
            str(BIN / "faceparse-parse"),
            "--model",
            str(best_json),
            "--configfile",
            str(configfile),
            str(held_out / "images"),
            str(pred_dir),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--configfile", type=Path, default=ROOT / "config.yaml", help="the demo's data and TTA")
    ap.add_argument("--held-out", type=int, default=100, help="held-out faces to score (0: none)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "compact.json")
    args = ap.parse_args(argv)
    out_dir = args.out.parent
    models = {name: MODELS[name] for name in args.models}
    train_and_evaluate(models, args.configfile, out_dir / "compact_models.yaml", args.cores)
    held_out = held_out_set(out_dir, args.held_out) if args.held_out else None
    validation = json.loads((ROOT / "results" / "data" / "validation.json").read_text())
    val_masks = Path(validation["splits"]["val"]["mask_dir"])
    rows = {}
    for name, config in models.items():
        model_dir = ROOT / "results" / "models" / name
        train = json.loads((model_dir / "train.json").read_text())
        row = {
            "config": config,
            "parameters": train["parameters"],
            "iterations": train["max_iters"],
            **speed_and_flops(name, config, out_dir),
        }
        row["val"] = scores(confusion(model_dir / "val_pred", val_masks))
        if held_out is not None:
            pred_dir = out_dir / "held_out_pred" / name
            parse_held_out(model_dir / "best.json", args.configfile, held_out, pred_dir)
            row["held_out"] = scores(confusion(pred_dir, held_out / "masks"))
        rows[name] = row
    args.out.write_text(json.dumps(rows, indent=2))
    print(
        "| model | parameters | GFLOPs (forward, one crop) | CPU s/iter (batch, crop) | iterations | CPU min "
        "(iterations x s/iter) | val mIoU | val mF1 | held-out mIoU | held-out mF1 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        held = r.get("held_out", {})
        print(
            f"| {name} | {r['parameters']:,} | {r['gflops_forward']:.2f} | "
            f"{r['s_per_iter']:.3f} ({r['batch']}, {r['crop'][0]}) | {r['iterations']} | "
            f"{r['iterations'] * r['s_per_iter'] / 60:.1f} | "
            f"{r['val']['mIoU']:.1f} | {r['val']['mF1']:.1f} | {held.get('mIoU', float('nan')):.1f} | "
            f"{held.get('mF1', float('nan')):.1f} |"
        )


if __name__ == "__main__":
    main()

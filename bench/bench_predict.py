"""Predict throughput: faceparse.predict.steps vs a plain mmsegmentation test run, same checkpoint.

Four timed runs over one split (default val), each end to end from the config
and checkpoint files (model build, checkpoint load, data loading, inference,
scoring):

- ``faceparse``          ``run_split`` without TTA (writes PNG masks, confusion matrix);
- ``faceparse TTA``      ``run_split`` with ``FaceSegTTAModel`` (writes PNG masks, confusion);
- ``mmseg Runner.test``  ``Runner.from_cfg(cfg).test()`` with ``IoUMetric`` - what
                         ``tools/test.py config ckpt`` does (no mask files written);
- ``mmseg Runner.test TTA`` the same with ``cfg.model = tta_model(module=model)`` and
                         ``tta_pipeline`` - what ``tools/test.py --tta`` does, with
                         mmseg's own ``SegTTAModel`` (naive flip averaging).

All use the same batch size, loader workers, scales and flips. Prints a
table; writes JSON.

Usage::

    # a trained model of the pipeline
    python bench/bench_predict.py --model demo_tiny
    # any config (random weights when no checkpoint), on generated noise images
    python bench/bench_predict.py --config configs/demo_tiny.py --synthetic 32 --size 512
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from faceparse.labels import CLASSES, PALETTE
from faceparse.mm.pipelines import config_test_pipeline, without_annotations
from faceparse.mm.tta import tta_pipeline
from faceparse.predict.models import load_model, model_paths, tta_model
from faceparse.predict.runner import run_split
from faceparse.records import split_files


def _synthetic_split(root: Path, n: int, size: int) -> Path:
    rng = np.random.default_rng(0)
    images, masks = root / "val" / "images", root / "val" / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    names = [f"{i:05d}" for i in range(n)]
    for name in names:
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(images / f"{name}.jpg")
        Image.fromarray(rng.integers(0, 19, (size, size), dtype=np.uint8), mode="L").save(masks / f"{name}.png")
    index = root / "validation.json"
    index.write_text(
        json.dumps(
            {
                "root": str(root),
                "layout": "mini",
                "splits": {
                    "val": {
                        "image_dir": str(images),
                        "mask_dir": str(masks),
                        "image_suffix": ".jpg",
                        "names": names,
                        "images": n,
                        "size": [size, size],
                    }
                },
            }
        )
    )
    return index


def _random_checkpoint(config: str, path: Path) -> str:
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import faceparse.mm  # noqa: F401
    from faceparse.mm.backbone import pretrained_off

    cfg = Config.fromfile(config)
    init_default_scope(cfg.get("default_scope", "mmseg"))
    model = MODELS.build(pretrained_off(cfg.model))  # random weights: nothing to download
    torch.save({"state_dict": model.state_dict(), "meta": {}}, path)
    return str(path)


def _subset(files, n: int, folder: Path):
    """The first ``n`` images of ``files``, linked into their own folder (Runner.test reads whole folders)."""
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    images, masks = [], []
    for img, mask in zip(files.images[:n], files.masks[:n]):
        images.append(folder / "images" / Path(img).name)
        masks.append(folder / "masks" / Path(mask).name)
        images[-1].symlink_to(Path(img).resolve())
        masks[-1].symlink_to(Path(mask).resolve())
    return type(files)(files.split, files.names[:n], tuple(map(str, images)), tuple(map(str, masks)))


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the loader workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_faceparse(config, checkpoint, files, device, batch, workers, scales, flip, tta, out_dir):
    t0 = time.perf_counter()
    model, cfg = load_model(config, checkpoint, device)
    base = without_annotations(config_test_pipeline(cfg))
    if tta:
        model, pipeline = tta_model(model), tta_pipeline(base, scales, flip, with_annotations=False)
    else:
        pipeline = base
    result = run_split(model, files, pipeline, out_dir=out_dir, batch_size=batch, workers=workers)
    _sync(device)
    return {"seconds": time.perf_counter() - t0, "loop_seconds": result["seconds"], "images": result["images"]}


def bench_runner(config, checkpoint, files, device, batch, workers, scales, flip, tta, work_dir):
    """What tools/test.py [--tta] does, with the test dataloader pointed at ``files``."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    import faceparse.mm  # noqa: F401

    t0 = time.perf_counter()
    cfg = Config.fromfile(config)
    cfg.work_dir = str(work_dir)
    cfg.load_from = checkpoint
    cfg.launcher = "none"
    pipeline = config_test_pipeline(cfg)
    image_dir, mask_dir = str(Path(files.images[0]).parent), str(Path(files.masks[0]).parent)
    cfg.test_dataloader = dict(
        batch_size=batch,
        num_workers=workers,
        persistent_workers=False,
        sampler=dict(type="DefaultSampler", shuffle=False),
        dataset=dict(
            type="BaseSegDataset",
            data_root="",
            reduce_zero_label=False,
            metainfo=dict(classes=CLASSES, palette=[list(p) for p in PALETTE]),
            data_prefix=dict(img_path=image_dir, seg_map_path=mask_dir),
            img_suffix=Path(files.images[0]).suffix,
            seg_map_suffix=".png",
            pipeline=pipeline,
        ),
    )
    cfg.test_evaluator = dict(type="IoUMetric", iou_metrics=["mIoU"])
    cfg.test_cfg = dict(type="TestLoop")
    for key in (
        "train_dataloader",
        "train_cfg",
        "optim_wrapper",
        "param_scheduler",
        "val_dataloader",
        "val_cfg",
        "val_evaluator",
        "resume",
    ):
        cfg.pop(key, None)
    cfg.pop("visualizer", None)
    cfg.default_hooks = dict(timer=dict(type="IterTimerHook"), logger=dict(type="LoggerHook", interval=50))
    if tta:
        cfg.test_dataloader.dataset.pipeline = tta_pipeline(pipeline, scales, flip, with_annotations=True)
        cfg.model = dict(type="SegTTAModel", module=cfg.model)
    runner = Runner.from_cfg(cfg)
    if device == "cpu":
        runner.model.to("cpu")
    metrics = runner.test()
    _sync(device)
    return {"seconds": time.perf_counter() - t0, "images": len(files.names), "mIoU": metrics.get("mIoU")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a pipeline model: results/models/{model}/{train,best}.json")
    ap.add_argument("--config", help="mmseg config (else from --model)")
    ap.add_argument("--checkpoint", help="checkpoint (else from --model; random weights when absent)")
    ap.add_argument("--validation", default="results/data/validation.json")
    ap.add_argument("--split", default="val")
    ap.add_argument("--synthetic", type=int, default=0, help="generate N noise images instead of --validation")
    ap.add_argument("--size", type=int, default=512, help="size of the --synthetic images")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N images of the split")
    ap.add_argument("--scales", type=float, nargs="+", default=[0.75, 1.0, 1.25])
    ap.add_argument("--no-flip", dest="flip", action="store_false")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--device", default="cuda:0" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--skip", nargs="*", default=[], choices=["faceparse", "faceparse_tta", "mmseg", "mmseg_tta"])
    ap.add_argument("--repeat", type=int, default=1, help="interleaved repeats; the best time of each is reported")
    ap.add_argument("--out", default="results/bench/bench_predict.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench_predict_") as tmp:
        return _bench(args, ap, Path(tmp))


def _bench(args, ap, tmp: Path) -> int:
    if args.model:
        config, checkpoint = model_paths(
            f"results/models/{args.model}/best.json", f"results/models/{args.model}/train.json"
        )
    else:
        if not args.config:
            ap.error("need --model or --config")
        config = args.config
        checkpoint = args.checkpoint or _random_checkpoint(config, tmp / "random.pth")
    config, checkpoint = args.config or config, args.checkpoint or checkpoint
    random_weights = not args.model and not args.checkpoint
    index = _synthetic_split(tmp / "data", args.synthetic, args.size) if args.synthetic else args.validation
    files = split_files(index, args.split, need_masks=True)
    if args.limit:
        files = _subset(files, args.limit, tmp / "subset")
    common = dict(device=args.device, batch=args.batch_size, workers=args.workers, scales=args.scales, flip=args.flip)

    def plan(files):
        return [
            (
                "faceparse",
                lambda: bench_faceparse(config, checkpoint, files, tta=False, out_dir=tmp / "pred", **common),
            ),
            ("mmseg", lambda: bench_runner(config, checkpoint, files, tta=False, work_dir=tmp / "runner", **common)),
            (
                "faceparse_tta",
                lambda: bench_faceparse(config, checkpoint, files, tta=True, out_dir=tmp / "pred_tta", **common),
            ),
            (
                "mmseg_tta",
                lambda: bench_runner(config, checkpoint, files, tta=True, work_dir=tmp / "runner_tta", **common),
            ),
        ]

    # Warm-up on one image: first-call costs (imports, allocator, codecs) land on no measured run.
    for name, fn in plan(_subset(files, 1, tmp / "warmup")):
        if name not in args.skip:
            print(f"warm-up {name} ...", file=sys.stderr, flush=True)
            fn()
    runs: dict[str, dict] = {}
    # Interleaved repeats (A B C D A B C D ...): on a shared machine the best of R is the
    # least disturbed measurement of each.
    for rep in range(args.repeat):
        for name, fn in plan(files):
            if name in args.skip:
                continue
            print(f"running {name} ({rep + 1}/{args.repeat}) ...", file=sys.stderr, flush=True)
            cpu0 = _cpu_seconds()
            r = fn()
            entry = runs.setdefault(name, {"images": r["images"], "all_seconds": [], "all_cpu_seconds": []})
            entry["all_seconds"].append(r["seconds"])
            entry["all_cpu_seconds"].append(_cpu_seconds() - cpu0)
            for key in ("loop_seconds", "mIoU"):
                if key in r:
                    entry.setdefault(key, []).append(r[key])
    for entry in runs.values():
        entry["seconds"] = min(entry["all_seconds"])
        entry["median_seconds"] = float(np.median(entry["all_seconds"]))
        entry["images_per_s"] = entry["images"] / entry["seconds"]
        entry["cpu_seconds"] = min(entry["all_cpu_seconds"])

    views = len(args.scales) * (2 if args.flip else 1)
    print(
        f"\n{len(files.names)} images ({args.split}), device {args.device}, batch {args.batch_size}, "
        f"workers {args.workers}, torch threads {torch.get_num_threads()}, TTA {views} views "
        f"(scales {args.scales}, flip {args.flip})"
    )
    print(f"best of {args.repeat}, end to end (model load + data + inference + scoring)")
    print("cpu s: CPU time of this process and its loader workers (steadier than wall time on a busy machine)")
    print(f"{'run':<16}{'seconds':>10}{'median':>10}{'images/s':>10}{'vs mmseg':>10}{'cpu s':>10}{'vs mmseg':>10}")
    for name, r in runs.items():
        ref = runs.get("mmseg_tta" if name.endswith("tta") else "mmseg")
        ratio = f"{r['images_per_s'] / ref['images_per_s']:.2f}x" if ref else "-"
        cpu_ratio = f"{ref['cpu_seconds'] / r['cpu_seconds']:.2f}x" if ref else "-"
        print(
            f"{name:<16}{r['seconds']:>10.2f}{r['median_seconds']:>10.2f}{r['images_per_s']:>10.2f}{ratio:>10}"
            f"{r['cpu_seconds']:>10.1f}{cpu_ratio:>10}"
        )
    report = {
        "config": config,
        "checkpoint": None if random_weights else checkpoint,
        "random_weights": random_weights,
        "split": args.split,
        "images": len(files.names),
        "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "workers": args.workers,
        "scales": args.scales,
        "flip": args.flip,
        "synthetic": args.synthetic or None,
        "repeat": args.repeat,
        "runs": runs,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

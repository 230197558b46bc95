"""Data-loading throughput of a config's training pipeline, and the loader workers a GPU needs.

The config's training dataset (``train_dataloader.dataset``, e.g. the seed's
FaceParseDataset with LoadImage, LoadAnnotations, RandomRotate, RandomResize,
RandomCrop, PhotoMetricDistortion, PackSegInputs at 512) is pointed at
synthetic faces (``faceparse.data.synthetic``, JPEG photos and PNG masks at
``--size``), or at a ``mini``-layout folder (``--data``), and measured two ways:

- **per worker**: ``dataset[i]`` in this one process with one torch thread
  and OpenCV's threads off, as mmengine sets up each loader worker
  (``mp_cfg.opencv_num_threads=0``): the images/s one worker delivers;
- **DataLoader**: a ``torch`` DataLoader with mmengine's ``pseudo_collate`` and
  ``--workers`` processes, batches of the config's size, end to end (checks
  that the per-worker rate scales; on a small machine the workers share cores).

With a training rate (``--train-json`` from bench/bench_train.py, or
``--train-rate``), it reports the workers needed:
``ceil(headroom x train images/s / per-worker images/s)``, and whether that
fits the cores (``--cores``, default this machine's).

Usage::

    python bench/bench_loader.py --n 48 --workers 1 2
    python bench/bench_loader.py --train-json results/bench/train_seed_bf16.json --cores 16
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def synthetic_split(root: Path, n: int, size: int, seed: int = 0) -> tuple[Path, Path, list[str]]:
    """``n`` synthetic faces: (image dir, mask dir, stems)."""
    from faceparse.data.synthetic import generate_face

    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    names = []
    for i in range(n):
        jpeg, mask = generate_face(size, seed, "train", i)
        name = f"train_{i:05d}"
        (images / f"{name}.jpg").write_bytes(jpeg)
        Image.fromarray(mask, mode="L").save(masks / f"{name}.png")
        names.append(name)
    return images, masks, names


def build_dataset(
    config: str | Path, image_dir: Path, mask_dir: Path, names: list[str], list_file: Path, options: dict | None = None
):
    """The config's training dataset over the given folders (what build_config does per split)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    import faceparse.mm  # noqa: F401  (registers FaceParseDataset and the transforms)

    cfg = Config.fromfile(str(config))
    if options:
        cfg.merge_from_dict(options)
    init_default_scope(cfg.get("default_scope", "mmseg"))
    list_file.write_text("".join(f"{n}\n" for n in names))
    ds = dict(cfg.train_dataloader.dataset)
    if ds.get("type") == "ConcatDataset":
        raise ValueError(f"{config}: train_dataloader.dataset is a ConcatDataset; give a config with one template")
    suffix = Path(next(image_dir.iterdir())).suffix
    ds.update(
        data_root="",
        ann_file=str(list_file),
        img_suffix=suffix,
        data_prefix=dict(img_path=str(image_dir), seg_map_path=str(mask_dir)),
    )
    return DATASETS.build(ds), int(cfg.train_dataloader.batch_size)


def per_worker_rate(dataset, passes: int) -> dict:
    """Images/s of ``dataset[i]`` in this process, single-threaded like a loader worker."""
    import cv2

    threads = torch.get_num_threads()
    cv2_threads = cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(0)
    try:
        dataset[0]  # first-touch costs (imports, page cache) out of the timing
        n = 0
        t0 = time.perf_counter()
        for _ in range(passes):
            for i in range(len(dataset)):
                packed = dataset[i]
                n += 1
        seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv2_threads)
    return {"images": n, "seconds": seconds, "images_per_s": n / seconds, "sample_shape": list(packed["inputs"].shape)}


def loader_rate(dataset, workers: int, batch_size: int, passes: int) -> dict:
    """End-to-end images/s of a DataLoader with ``workers`` processes (worker start-up excluded)."""
    import cv2
    from mmengine.dataset import pseudo_collate

    cv2_threads = cv2.getNumThreads()
    cv2.setNumThreads(0)  # inherited by the forked workers, as mmengine's mp_cfg does
    try:
        warm = max(1, workers)  # each worker's first batch carries its start-up: not timed
        sampler = [i % len(dataset) for i in range(warm * batch_size + passes * len(dataset))]
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            collate_fn=pseudo_collate,
            worker_init_fn=_one_thread,
            persistent_workers=False,
            prefetch_factor=2 if workers else None,
        )
        it = iter(loader)
        for _ in range(warm):
            next(it)
        n = 0
        t0 = time.perf_counter()
        for batch in it:
            n += len(batch["inputs"])
        seconds = time.perf_counter() - t0
    finally:
        cv2.setNumThreads(cv2_threads)
    return {
        "workers": workers,
        "batch_size": batch_size,
        "images": n,
        "seconds": seconds,
        "images_per_s": n / seconds,
        "per_worker_images_per_s": n / seconds / max(workers, 1),
    }


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)


def workers_needed(train_images_per_s: float, per_worker: float, headroom: float) -> int:
    """Loader workers that deliver ``headroom`` x the training rate."""
    return max(1, math.ceil(headroom * train_images_per_s / per_worker))


def _train_rates(args: argparse.Namespace) -> list[tuple[float, str]]:
    """(images/s, where it comes from) of each training rate to feed."""
    rates = [(args.train_rate, "--train-rate")] if args.train_rate else []
    for path in args.train_json or []:
        data = json.loads(Path(path).read_text())
        if "images_per_s" not in data:
            raise SystemExit(f"bench_loader: {path} has no images_per_s (not a bench_train JSON?)")
        rates.append(
            (
                float(data["images_per_s"]),
                f"{path}: {data.get('config')} {data.get('precision')} "
                f"batch {data.get('batch_size')} on {data.get('device_name')}",
            )
        )
    return rates


def main(argv: list[str] | None = None) -> int:
    from mmengine.config import DictAction

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(REPO / "configs" / "seed_convnext_xl.py"))
    ap.add_argument("--cfg-options", nargs="+", action=DictAction, default=None)
    ap.add_argument("--data", help="a folder with images/ and masks/ (default: generate synthetic faces)")
    ap.add_argument("--n", type=int, default=48, help="synthetic images (or the first N of --data)")
    ap.add_argument("--size", type=int, default=512, help="synthetic image size")
    ap.add_argument("--passes", type=int, default=2, help="passes over the images per measurement")
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2], help="DataLoader runs (none: skip)")
    ap.add_argument("--train-json", nargs="+", help="bench_train JSONs: their images_per_s are rates to feed")
    ap.add_argument("--train-rate", type=float, help="training images/s to feed (instead of --train-json)")
    ap.add_argument(
        "--headroom",
        type=float,
        default=1.5,
        help="feed this many times the training rate (jitter, slower images, the main process)",
    )
    ap.add_argument("--cores", type=int, default=os.cpu_count(), help="the training node's CPU cores")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)
    rates = _train_rates(args)

    with tempfile.TemporaryDirectory(prefix="bench_loader_") as tmp:
        tmp_path = Path(tmp)
        t0 = time.perf_counter()
        if args.data:
            image_dir, mask_dir = Path(args.data) / "images", Path(args.data) / "masks"
            names = sorted(p.stem for p in image_dir.iterdir())[: args.n]
        else:
            image_dir, mask_dir, names = synthetic_split(tmp_path / "data", args.n, args.size)
        make_seconds = time.perf_counter() - t0
        dataset, batch_size = build_dataset(
            args.config, image_dir, mask_dir, names, tmp_path / "train.txt", args.cfg_options
        )
        single = per_worker_rate(dataset, args.passes)
        loaders = [loader_rate(dataset, w, batch_size, args.passes) for w in args.workers]

    result = {
        "config": args.config,
        "data": args.data or f"{args.n} synthetic faces at {args.size}x{args.size} ({make_seconds:.1f} s to make)",
        "images": len(names),
        "per_worker": single,
        "dataloader": loaders,
        "cpu": {"cores_here": os.cpu_count(), "load_average": list(os.getloadavg())},
        "headroom": args.headroom,
    }
    lines = [
        f"{args.config} training pipeline, {result['data']}",
        f"  one worker (this process, 1 thread): {single['images_per_s']:.1f} images/s "
        f"({single['images']} in {single['seconds']:.1f} s), samples {single['sample_shape']}",
    ]
    for r in loaders:
        lines.append(
            f"  DataLoader, {r['workers']} worker(s), batch {r['batch_size']}: {r['images_per_s']:.1f} "
            f"images/s ({r['per_worker_images_per_s']:.1f} per worker)"
        )
    result["train"] = []
    for rate, source in rates:
        need = workers_needed(rate, single["images_per_s"], args.headroom)
        result["train"].append(
            {
                "images_per_s": rate,
                "source": source,
                "workers_needed": need,
                "cores": args.cores,
                "fits_cores": need <= args.cores,
            }
        )
        lines.append(
            f"  training at {rate:.1f} images/s ({source}) needs {need} worker(s) "
            f"({args.headroom}x headroom); {args.cores} cores: "
            f"{'enough' if need <= args.cores else 'NOT enough, data loading is the bottleneck'}"
        )
    print("\n".join(lines), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training throughput of an mmseg model config on synthetic data.

One process builds the config's model (pretrained loading off, SyncBN as BN),
its optimizer wrapper (the config's optimizer and layer-decay constructor,
with the precision asked for), and one fixed batch of random uint8 images and
random labels at the config's crop size. It runs ``--warmup`` iterations of
``model.train_step`` (data preprocessor, forward, losses, backward, optimizer
step: what mmengine's ``IterBasedTrainLoop`` runs per iteration, less data
loading and hooks), then ``--iters`` timed ones, synchronising the device
after each.

Reported (a table on stdout, all of it as JSON in ``--out``):

- seconds per iteration (mean, median, min, std) and images/s;
- peak memory: ``torch.cuda.max_memory_allocated`` on a GPU, the process's
  peak RSS (``VmHWM``, reset before the warm-up) on the CPU;
- FLOPs: the forward pass at training time (backbone, decode head,
  auxiliary heads; the losses left out) of one image is counted by mmengine's
  ``FlopAnalyzer`` (fvcore's counting: one multiply-add is one "flop", so it
  is doubled here to FLOPs); forward + backward is taken as 3x the forward
  (the backward computes gradients for both inputs and weights: about twice
  the forward), the usual estimate;
- achieved TFLOP/s (FLOPs per image x images/s) and MFU against the dense
  (no sparsity) tensor-core peak of the card (``PEAK_TFLOPS``; ``--peak-tflops``
  for another card).

``--max-batch`` first finds the largest batch that fits (doubling, then
bisection; out-of-memory on a GPU, ``--memory-limit-gb`` of peak memory on
either device) and times that batch.

Usage::

    python bench/bench_train.py configs/demo_tiny.py --iters 10 --warmup 2
    python bench/bench_train.py configs/seed_convnext_xl.py --precision bf16 --batch-size 4 \\
        --iters 50 --warmup 10 --out results/bench/train_seed_bf16.json
    python bench/bench_train.py configs/seed_convnext_xl.py --precision bf16 --max-batch --max-seconds 60
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import logging
import math
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

# Dense (no structured sparsity) peak TFLOP/s from NVIDIA's datasheets, per
# autocast dtype; "tf32" is fp32 matmuls/convs on tensor cores (TF32 on), "fp32"
# the plain CUDA-core rate. RTX 3090: fp16/bf16 with fp32 accumulation (what
# PyTorch uses; fp16 accumulation would be 142).
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9},
    "H100 SXM": {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9},
    "H100 NVL": {"bf16": 835.5, "fp16": 835.5, "tf32": 417.5, "fp32": 60.0},
    "H100 PCIe": {"bf16": 756.5, "fp16": 756.5, "tf32": 378.0, "fp32": 51.2},
    "A100": {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5},
    "RTX 3090": {"bf16": 71.0, "fp16": 71.0, "tf32": 35.6, "fp32": 35.6},
}

# What each --precision makes of the config's optim_wrapper (the same keys a
# training config takes as overrides; see configs/_base_/schedule_160k.py).
PRECISIONS: dict[str, dict[str, Any]] = {
    "fp32": {"type": "OptimWrapper"},
    "fp16": {"type": "AmpOptimWrapper", "dtype": "float16", "loss_scale": "dynamic"},
    "bf16": {"type": "AmpOptimWrapper", "dtype": "bfloat16", "loss_scale": 1.0},
}


def card(device_name: str) -> str | None:
    """The ``PEAK_TFLOPS`` row of a CUDA device name (``NVIDIA H100 80GB HBM3`` -> ``H100 SXM``)."""
    name = device_name.upper()
    if "H200" in name:
        return "H200"
    if "H100" in name:
        return "H100 PCIe" if "PCIE" in name else "H100 NVL" if "NVL" in name else "H100 SXM"
    if "A100" in name:
        return "A100"
    if "3090" in name:
        return "RTX 3090"
    return None


def peak_key(precision: str, tf32: bool) -> str:
    if precision in ("bf16", "fp16"):
        return precision
    return "tf32" if tf32 else "fp32"


# --------------------------------------------------------------------------- model


def load_config(config: str | Path, options: dict | None = None):
    from mmengine.config import Config

    cfg = Config.fromfile(str(config))
    if options:
        cfg.merge_from_dict(options)
    return cfg


def crop_size(cfg) -> tuple[int, int]:
    """(h, w) of a training sample: ``crop_size``, else the preprocessor's ``size``, else ``RandomCrop``."""
    size = cfg.get("crop_size") or cfg.model.get("data_preprocessor", {}).get("size")
    if not size:
        crops = [t["crop_size"] for t in cfg.get("train_pipeline", []) if t.get("type") == "RandomCrop"]
        size = crops[0] if crops else None
    if not size:
        raise ValueError(f"{cfg.filename}: no crop_size, model.data_preprocessor.size or RandomCrop; pass --crop")
    return (int(size[0]), int(size[1]))


def build_model(cfg, device: str) -> nn.Module:
    """The config's segmentor on ``device``, random weights (no pretrained loading), SyncBN as BN."""
    from mmengine.logging import MMLogger
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import faceparse.mm  # noqa: F401  (registers TimmFeatureBackbone, ...)
    from faceparse.mm.backbone import pretrained_off

    init_default_scope(cfg.get("default_scope", "mmseg"))
    model = MODELS.build(pretrained_off(cfg.model))
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs every parameter at INFO
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return revert_sync_batchnorm(model).to(device)


def build_optim_wrapper(model: nn.Module, cfg, precision: str):
    from mmengine.optim import build_optim_wrapper as build

    wrapper_cfg = copy.deepcopy(cfg.optim_wrapper)
    for key in ("type", "dtype", "loss_scale"):
        wrapper_cfg.pop(key, None)
    wrapper_cfg.update(PRECISIONS[precision])
    return build(model, wrapper_cfg)


def synthetic_batch(batch: int, size: tuple[int, int], num_classes: int, seed: int = 0) -> dict:
    """What the data loader hands ``train_step``: uint8 CHW images and ``SegDataSample``s."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    g = torch.Generator().manual_seed(seed)
    h, w = size
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g))
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, h, w), generator=g))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


class _TrainForward(nn.Module):
    """The training forward of an EncoderDecoder without its losses (what FlopAnalyzer traces)."""

    def __init__(self, segmentor: nn.Module):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, x: torch.Tensor) -> tuple:
        seg = self.segmentor
        feats = seg.extract_feat(x)
        outs = [seg.decode_head(feats)]
        aux = getattr(seg, "auxiliary_head", None)
        if aux is not None:
            outs += [head(feats) for head in aux] if isinstance(aux, nn.ModuleList) else [aux(feats)]
        return tuple(outs)


def forward_flops(model: nn.Module, size: tuple[int, int], device: str) -> dict:
    """FLOPs of one image's training forward (2 x fvcore's multiply-add count), per top-level part."""
    from mmengine.analysis import FlopAnalyzer

    was_training = model.training
    model.eval()
    try:
        x = torch.zeros(1, 3, *size, device=device)
        with torch.no_grad():
            analyzer = FlopAnalyzer(_TrainForward(model), (x,))
            analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            total = 2 * analyzer.total()
            by_module = analyzer.by_module()
            parts = {
                name.split(".", 1)[1]: 2 * count for name, count in by_module.items() if name.count(".") == 1 and count
            }
    finally:
        model.train(was_training)
    return {"forward_per_image": float(total), "forward_by_part": parts}


def count_flops(model: nn.Module, size: tuple[int, int], device: str) -> dict:
    """Forward and forward+backward FLOPs per image: FlopAnalyzer, else torch's FlopCounterMode."""
    try:
        flops = forward_flops(model, size, device)
        flops["method"] = (
            "mmengine.analysis.FlopAnalyzer on backbone + decode/auxiliary heads, batch 1, "
            "2 FLOPs per multiply-add; losses not counted; fwd+bwd = 3 x fwd"
        )
    except Exception as exc:  # the jit tracer cannot follow every model: count the dispatched ops instead
        from torch.utils.flop_counter import FlopCounterMode

        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                _TrainForward(model)(torch.zeros(1, 3, *size, device=device))
        finally:
            model.train(was_training)
        flops = {
            "forward_per_image": float(counter.get_total_flops()),
            "tracer_error": f"{type(exc).__name__}: {exc}",
            "method": (
                "torch.utils.flop_counter.FlopCounterMode (matmuls and convolutions) on backbone + "
                "decode/auxiliary heads, batch 1; losses not counted; fwd+bwd = 3 x fwd"
            ),
        }
    flops["fwd_bwd_per_image"] = 3 * flops["forward_per_image"]
    return flops


def flops_from(path: str | Path, config: str, options: dict, size: tuple[int, int]) -> dict:
    """The FLOP counts of an earlier run of the same config, options and crop (they depend on nothing else)."""
    earlier = json.loads(Path(path).read_text())
    same = (earlier.get("config"), earlier.get("cfg_options"), earlier.get("crop_size")) == (
        config,
        options,
        list(size),
    )
    if not same:
        raise SystemExit(
            f"bench_train: {path} is a run of {earlier.get('config')} {earlier.get('cfg_options')} at "
            f"{earlier.get('crop_size')}, not {config} {options} at {list(size)}"
        )
    if "fwd_bwd_per_image" not in earlier.get("flops", {}):
        raise SystemExit(f"bench_train: {path} has no FLOP count")
    return {**earlier["flops"], "from": str(path)}


# --------------------------------------------------------------------------- memory, timing


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def reset_peak_memory(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # "5" resets the peak RSS (VmHWM) of this process (Linux >= 4.0)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_memory_bytes(device: str) -> tuple[int, str]:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated(device), "cuda_max_memory_allocated"
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024, "process_peak_rss"
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process_peak_rss_since_start"


def run_iterations(
    model, wrapper, data: dict, n: int, device: str, max_seconds: float | None = None
) -> tuple[list[float], dict]:
    """Per-iteration seconds of up to ``n`` train steps (fewer if ``max_seconds`` runs out); last losses."""
    times: list[float] = []
    losses: dict = {}
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        losses = model.train_step(data, wrapper)
        _sync(device)
        times.append(time.perf_counter() - t0)
        if max_seconds is not None and time.perf_counter() - start > max_seconds:
            break
    return times, {k: v.detach().float().mean().item() for k, v in losses.items()}


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _free(model, wrapper, device: str) -> None:
    wrapper.zero_grad()
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def probe_batch(model, wrapper, batch: int, size, num_classes: int, device: str, memory_limit: float | None) -> dict:
    """Two train steps at ``batch``: does it fit (no OOM, peak memory under ``memory_limit`` bytes)?"""
    t0 = time.perf_counter()
    reset_peak_memory(device)
    oom = False
    try:
        run_iterations(model, wrapper, synthetic_batch(batch, size, num_classes), 2, device)
    except (RuntimeError, torch.OutOfMemoryError) as exc:
        if not _is_oom(exc):
            raise
        oom = True  # the exception (and the tensors its frames hold) is dropped before freeing
    peak, _ = peak_memory_bytes(device)
    _free(model, wrapper, device)
    fits = not oom and (memory_limit is None or peak <= memory_limit)
    print(
        f"bench_train: batch {batch}: {'fits' if fits else 'does not fit'} (peak {peak / 2**30:.2f} GB"
        f"{', out of memory' if oom else ''})",
        file=sys.stderr,
        flush=True,
    )
    return {
        "batch": batch,
        "fits": fits,
        "oom": oom,
        "peak_memory_gb": round(peak / 2**30, 3),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def find_max_batch(
    model, wrapper, start: int, cap: int, size, num_classes: int, device: str, memory_limit: float | None
) -> tuple[int, list[dict]]:
    """The largest batch <= ``cap`` that fits: double from ``start``, then bisect to within 1/8."""
    probes: list[dict] = []

    def fits(batch: int) -> bool:
        probes.append(probe_batch(model, wrapper, batch, size, num_classes, device, memory_limit))
        return probes[-1]["fits"]

    ok, bad = 0, None
    batch = max(1, start)
    while batch <= cap:
        if not fits(batch):
            bad = batch
            break
        ok, batch = batch, batch * 2
    if ok == 0:
        raise RuntimeError(f"bench_train: batch {start} does not fit on {device}")
    if bad is None and ok < cap:
        if fits(cap):
            ok = cap
        else:
            bad = cap
    while bad is not None and bad - ok > max(1, ok // 8):
        mid = (ok + bad) // 2
        if fits(mid):
            ok = mid
        else:
            bad = mid
    return ok, probes


# --------------------------------------------------------------------------- main


def set_math_modes(device: str, tf32: bool, cudnn_benchmark: bool) -> None:
    torch.backends.cudnn.benchmark = cudnn_benchmark
    if not device.startswith("cuda"):
        return
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision") and hasattr(getattr(cudnn, "conv", None), "fp32_precision"):
        # torch >= 2.9's API (the allow_tf32 flags are deprecated; mixing the two is an error)
        matmul.fp32_precision = "tf32" if tf32 else "ieee"
        cudnn.conv.fp32_precision = "tf32" if tf32 else "ieee"
    else:
        matmul.allow_tf32 = tf32
        cudnn.allow_tf32 = tf32


def bench(args: argparse.Namespace) -> dict:
    device = args.device
    if args.precision != "fp32" and not device.startswith("cuda"):
        raise SystemExit(
            f"bench_train: --precision {args.precision} needs a GPU (mmengine's AmpOptimWrapper); use fp32 on the CPU"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    set_math_modes(device, args.tf32, args.cudnn_benchmark)
    torch.manual_seed(args.seed)

    cfg = load_config(args.config, args.cfg_options)
    size = tuple(args.crop) if args.crop else crop_size(cfg)
    num_classes = int(cfg.model.decode_head.num_classes)
    flops = flops_from(args.flops_from, str(args.config), args.cfg_options or {}, size) if args.flops_from else None
    t0 = time.perf_counter()
    model = build_model(cfg, device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        # the data preprocessor stacks NCHW batches: hand the backbone channels-last ones
        model.backbone.register_forward_pre_hook(
            lambda module, inputs: (inputs[0].contiguous(memory_format=torch.channels_last), *inputs[1:])
        )
    build_seconds = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())

    if flops is None:
        flops = count_flops(model, size, device)

    model.train()
    wrapper = build_optim_wrapper(model, cfg, args.precision)
    limit = args.memory_limit_gb * 2**30 if args.memory_limit_gb else None
    batch, probes = args.batch_size, []
    if args.max_batch:
        batch, probes = find_max_batch(
            model, wrapper, args.batch_size, args.max_batch_cap, size, num_classes, device, limit
        )

    while True:
        data = synthetic_batch(batch, size, num_classes, args.seed)
        reset_peak_memory(device)
        try:
            warm, _ = run_iterations(model, wrapper, data, args.warmup, device)
            times, losses = run_iterations(model, wrapper, data, args.iters, device, args.max_seconds)
            break
        except (RuntimeError, torch.OutOfMemoryError) as exc:
            # a searched batch that fitted in its probe can still fail after fragmentation: back off 1/8
            if not (args.max_batch and _is_oom(exc) and batch > 1):
                raise
        del data
        _free(model, wrapper, device)
        batch = max(1, batch - max(1, batch // 8))
        probes.append({"batch": batch, "after": "out of memory in the timed run"})
    peak, memory_kind = peak_memory_bytes(device)

    mean = statistics.fmean(times)
    images_per_s = batch / mean
    result: dict[str, Any] = {
        "config": str(args.config),
        "cfg_options": args.cfg_options or {},
        "device": device,
        "device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else _cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "precision": args.precision,
        "channels_last": args.channels_last,
        "cudnn_benchmark": args.cudnn_benchmark,
        "tf32": args.tf32,
        "batch_size": batch,
        "crop_size": list(size),
        "params": params,
        "build_seconds": round(build_seconds, 2),
        "warmup": len(warm),
        "iters": len(times),
        "seconds_per_iter": {
            "mean": mean,
            "median": statistics.median(times),
            "min": min(times),
            "std": statistics.pstdev(times),
        },
        "images_per_s": images_per_s,
        "peak_memory_gb": peak / 2**30,
        "memory_kind": memory_kind,
        "flops": flops,
        "losses": losses,
        "losses_finite": all(math.isfinite(v) for v in losses.values()),
        "versions": _versions(),
    }
    if device.startswith("cuda"):
        result["memory_reserved_gb"] = torch.cuda.max_memory_reserved(device) / 2**30
        result["memory_total_gb"] = torch.cuda.get_device_properties(device).total_memory / 2**30
    if probes:
        result["max_batch_search"] = {
            "start": args.batch_size,
            "cap": args.max_batch_cap,
            "memory_limit_gb": args.memory_limit_gb,
            "probes": probes,
        }
    if "fwd_bwd_per_image" in flops:
        achieved = flops["fwd_bwd_per_image"] * images_per_s / 1e12
        result["achieved_tflops"] = achieved
        row = card(result["device_name"]) if device.startswith("cuda") else None
        peak_tflops = args.peak_tflops or (PEAK_TFLOPS[row][peak_key(args.precision, args.tf32)] if row else None)
        result["peak_tflops"] = peak_tflops
        result["peak_source"] = (
            "--peak-tflops"
            if args.peak_tflops
            else f"{row} {peak_key(args.precision, args.tf32)} dense"
            if row
            else None
        )
        result["mfu"] = achieved / peak_tflops if peak_tflops else None
    if args.save_checkpoint:
        _save_checkpoint(model, args.save_checkpoint, result)
        result["checkpoint"] = str(args.save_checkpoint)
    return result


def _save_checkpoint(model: nn.Module, path: str | Path, result: dict) -> None:
    """The trained weights as mmengine saves them (``state_dict`` + ``meta``), contiguous NCHW."""
    state = {
        k: v.detach().to("cpu", memory_format=torch.contiguous_format) if v.dim() == 4 else v.detach().cpu()
        for k, v in model.state_dict().items()
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state_dict": state,
            "meta": {"iter": result["warmup"] + result["iters"], "bench_train": {"config": result["config"]}},
        },
        path,
    )


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.machine()


def _versions() -> dict:
    import mmengine
    import mmseg

    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "mmengine": mmengine.__version__,
        "mmseg": mmseg.__version__,
        "numpy": np.__version__,
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.version.cuda
        out["cudnn"] = torch.backends.cudnn.version()
    return out


def print_table(r: dict) -> None:
    s = r["seconds_per_iter"]
    lines = [
        f"{r['config']} on {r['device_name']} ({r['device']}), {r['precision']}, batch {r['batch_size']}, "
        f"crop {r['crop_size'][0]}x{r['crop_size'][1]}, channels_last={r['channels_last']}, "
        f"cudnn.benchmark={r['cudnn_benchmark']}, tf32={r['tf32']}",
        f"  s/iter       {s['mean']:.4f} mean, {s['median']:.4f} median, {s['min']:.4f} min "
        f"({r['iters']} iters after {r['warmup']} warm-up)",
        f"  images/s     {r['images_per_s']:.2f}",
        f"  peak memory  {r['peak_memory_gb']:.2f} GB ({r['memory_kind']})",
    ]
    f = r["flops"]
    if "fwd_bwd_per_image" in f:
        lines.append(
            f"  GFLOPs/image {f['forward_per_image'] / 1e9:.1f} fwd, {f['fwd_bwd_per_image'] / 1e9:.1f} "
            "fwd+bwd (3x fwd)"
        )
        mfu = f"{100 * r['mfu']:.1f}% of {r['peak_tflops']} ({r['peak_source']})" if r.get("mfu") else "n/a"
        lines.append(f"  TFLOP/s      {r['achieved_tflops']:.3f} achieved; MFU {mfu}")
    else:
        lines.append(f"  FLOPs        not counted: {f['error']}")
    print("\n".join(lines), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from mmengine.config import DictAction

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="an mmseg model config (configs/*.py)")
    ap.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        default=None,
        help="config overrides key=value (as models.X.overrides)",
    )
    ap.add_argument("--precision", choices=sorted(PRECISIONS), default="fp32")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the config's train batch size")
    ap.add_argument("--iters", type=int, default=20, help="timed iterations")
    ap.add_argument("--warmup", type=int, default=5, help="untimed iterations first (cudnn autotuning, caches)")
    ap.add_argument("--max-seconds", type=float, default=None, help="stop the timed iterations after this long")
    ap.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), help="default: the config's crop size")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=False)
    ap.add_argument("--cudnn-benchmark", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument(
        "--tf32", action=argparse.BooleanOptionalAction, default=True, help="fp32 matmuls/convs on tensor cores (GPU)"
    )
    ap.add_argument("--max-batch", action="store_true", help="find and time the largest batch that fits")
    ap.add_argument("--max-batch-cap", type=int, default=256)
    ap.add_argument(
        "--memory-limit-gb", type=float, default=None, help="with --max-batch: a batch fits only under this peak memory"
    )
    ap.add_argument("--device", default="cuda:0" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the card's peak, for MFU (default: PEAK_TFLOPS)")
    ap.add_argument("--flops-from", help="take the FLOP counts from this earlier bench_train JSON (same config)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-checkpoint", help="save the trained weights here (an mmengine-style checkpoint)")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)
    if args.batch_size is None:
        args.batch_size = int(load_config(args.config, args.cfg_options).train_dataloader.batch_size)
    return args


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random weights: nothing to download
    args = parse_args(argv)
    result = bench(args)
    print_table(result)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["losses_finite"] else 1


if __name__ == "__main__":
    sys.exit(main())

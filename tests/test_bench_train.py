"""bench/bench_train.py on the demo config (CPU), its batch search and peak table; bf16 as a config option."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("mmcv.ops")

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "configs" / "demo_tiny.py"
SEED = REPO / "configs" / "seed_convnext_xl.py"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_train = _load("bench_train")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_train.py"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench_train") / "demo.json"
    result = _run(
        str(DEMO),
        "--iters",
        "3",
        "--warmup",
        "1",
        "--batch-size",
        "2",
        "--threads",
        "2",
        "--device",
        "cpu",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "images/s" in result.stdout and "GFLOPs/image" in result.stdout
    return json.loads(out.read_text())


def test_demo_on_cpu(demo_run):
    r = demo_run
    assert r["iters"] == 3 and r["warmup"] == 1 and r["batch_size"] == 2 and r["crop_size"] == [192, 192]
    assert r["precision"] == "fp32" and r["device"] == "cpu" and r["losses_finite"]
    s = r["seconds_per_iter"]
    assert 0 < s["min"] <= s["median"] and r["images_per_s"] == pytest.approx(2 / s["mean"])
    assert r["memory_kind"].startswith("process_peak_rss") and 0.1 < r["peak_memory_gb"] < 20
    assert r["mfu"] is None and r["peak_tflops"] is None  # no peak known for a CPU
    f = r["flops"]
    # timm's ResNet-18 is 1.82 GMACs at 224x224; at 192x192 that is 2 x 1.82e9 x (192/224)^2 FLOPs
    assert f["forward_by_part"]["backbone"] == pytest.approx(2 * 1.82e9 * (192 / 224) ** 2, rel=0.05)
    assert f["forward_per_image"] == pytest.approx(sum(f["forward_by_part"].values()))
    assert f["fwd_bwd_per_image"] == 3 * f["forward_per_image"]
    assert r["achieved_tflops"] == pytest.approx(f["fwd_bwd_per_image"] * r["images_per_s"] / 1e12)


def test_flops_from_and_precision_checks(demo_run, tmp_path):
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps(demo_run))
    out = tmp_path / "again.json"
    result = _run(
        str(DEMO),
        "--iters",
        "1",
        "--warmup",
        "0",
        "--batch-size",
        "2",
        "--threads",
        "2",
        "--device",
        "cpu",
        "--channels-last",
        "--flops-from",
        str(earlier),
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    again = json.loads(out.read_text())
    assert again["channels_last"] and again["flops"]["forward_per_image"] == demo_run["flops"]["forward_per_image"]
    other = _run(str(DEMO), "--crop", "64", "64", "--device", "cpu", "--flops-from", str(earlier))
    assert other.returncode != 0 and "not " in other.stderr and "[64, 64]" in other.stderr
    bf16 = _run(str(DEMO), "--precision", "bf16", "--device", "cpu")
    assert bf16.returncode != 0 and "needs a GPU" in bf16.stderr


def test_max_batch_search(monkeypatch):
    """Doubling then bisection: the answer fits, and the next size up by 1/8 does not."""
    tried = []

    def probe(model, wrapper, batch, *args):
        tried.append(batch)
        return {"batch": batch, "fits": batch <= 37}

    monkeypatch.setattr(bench_train, "probe_batch", probe)
    batch, probes = bench_train.find_max_batch(None, None, 4, 256, (8, 8), 19, "cpu", None)
    assert batch == 36 and tried == [4, 8, 16, 32, 64, 48, 40, 36]
    tried.clear()
    assert bench_train.find_max_batch(None, None, 4, 24, (8, 8), 19, "cpu", None)[0] == 24
    assert tried == [4, 8, 16, 24]
    with pytest.raises(RuntimeError, match="batch 64 does not fit"):
        bench_train.find_max_batch(None, None, 64, 256, (8, 8), 19, "cpu", None)


def test_max_batch_on_cpu(tmp_path):
    out = tmp_path / "max.json"
    result = _run(
        str(DEMO),
        "--max-batch",
        "--batch-size",
        "2",
        "--max-batch-cap",
        "4",
        "--iters",
        "1",
        "--warmup",
        "0",
        "--crop",
        "64",
        "64",
        "--threads",
        "2",
        "--device",
        "cpu",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    r = json.loads(out.read_text())
    assert r["batch_size"] == 4 and [p["batch"] for p in r["max_batch_search"]["probes"]] == [2, 4]


def test_peak_table():
    assert bench_train.card("NVIDIA H100 80GB HBM3") == "H100 SXM"
    assert bench_train.card("NVIDIA H100 PCIe") == "H100 PCIe"
    assert bench_train.card("NVIDIA H200") == "H200"
    assert bench_train.card("NVIDIA A100-SXM4-80GB") == "A100"
    assert bench_train.card("NVIDIA GeForce RTX 3090") == "RTX 3090"
    assert bench_train.card("Tesla T4") is None
    assert bench_train.PEAK_TFLOPS["H100 SXM"][bench_train.peak_key("bf16", True)] == pytest.approx(989.4)
    assert bench_train.peak_key("fp32", True) == "tf32" and bench_train.peak_key("fp32", False) == "fp32"


@pytest.mark.parametrize(
    "overrides, dtype, static_scale",
    [
        ({}, torch.float16, None),  # the seed's fp16, dynamic loss scale
        ({"optim_wrapper.dtype": "bfloat16", "optim_wrapper.loss_scale": 1.0}, torch.bfloat16, 1.0),
    ],
)
def test_amp_dtype_is_a_config_option(monkeypatch, overrides, dtype, static_scale):
    """The seed config trains in fp16 by default; two documented overrides make it bf16 without loss scaling."""
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.optim.optimizer import amp_optimizer_wrapper

    import faceparse.mm  # noqa: F401

    monkeypatch.setattr(amp_optimizer_wrapper, "is_cuda_available", lambda: True)  # built, never stepped
    cfg = Config.fromfile(str(SEED))
    cfg.merge_from_dict(overrides)
    wrapper_cfg = {k: v for k, v in cfg.optim_wrapper.items() if k not in ("constructor", "paramwise_cfg")}
    wrapper = build_optim_wrapper(torch.nn.Linear(2, 2), wrapper_cfg)
    assert type(wrapper).__name__ == "AmpOptimWrapper"
    assert wrapper.cast_dtype == dtype and wrapper._scale_update_param == static_scale
    precision = {torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]
    assert {k: cfg.optim_wrapper[k] for k in ("type", "dtype", "loss_scale")} == bench_train.PRECISIONS[precision]


def test_flop_count_without_the_tracer(demo_run, monkeypatch):
    """When FlopAnalyzer cannot trace a model, torch's FlopCounterMode counts about the same."""

    def no_trace(*args):
        raise RuntimeError("tracer failed")

    monkeypatch.setattr(bench_train, "forward_flops", no_trace)
    model = bench_train.build_model(bench_train.load_config(DEMO), "cpu")
    flops = bench_train.count_flops(model, (192, 192), "cpu")
    assert flops["tracer_error"] == "RuntimeError: tracer failed" and model.training
    assert flops["forward_per_image"] == pytest.approx(demo_run["flops"]["forward_per_image"], rel=0.05)
    assert flops["fwd_bwd_per_image"] == 3 * flops["forward_per_image"]

"""tools/prepare_gpu_wheels.sh (its folder fits) and tools/gpu_check.sh in CPU mode, so the GPU check cannot rot."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PREPARE = REPO / "tools" / "prepare_gpu_wheels.sh"
CHECK = REPO / "tools" / "gpu_check.sh"


def _sed_expressions(script: Path) -> list[str]:
    return re.findall(r"-e '(s/[^']*)'", script.read_text())


def test_mmcv_patch_is_build_mmcvs():
    """prepare_gpu_wheels.sh patches the sdist exactly as build_mmcv.sh does (C++20, no pkg_resources)."""
    ours = _sed_expressions(PREPARE)
    assert len(ours) == 3 and ours == _sed_expressions(REPO / "tools" / "build_mmcv.sh")


def _prepare(folder: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(PREPARE), str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHON": sys.executable, **env},
    )


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gpu_wheels")
    probe_dir = tmp_path_factory.mktemp("pip_probe")
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(probe_dir), "addict==2.4.0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if probe.returncode != 0:
        pytest.skip(f"the package index is not reachable: {probe.stderr[-300:]}")
    result = _prepare(folder)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return folder


def test_prepare_gpu_wheels(wheels):
    names = sorted(p.name for p in wheels.iterdir() if p.is_file())
    for prefix in (
        "mmengine-0.10.7-",
        "mmsegmentation-1.2.2-",
        "addict-",
        "yapf-",
        "termcolor-",
        "ftfy-",
        "prettytable-",
        "wcwidth-",
        "platformdirs-",
        "mmcv-2.1.0-patched.tar.gz",
    ):
        assert any(n.startswith(prefix) for n in names), (prefix, names)
    sums = (wheels / "SHA256SUMS").read_text().split()
    assert sorted(sums[1::2]) == [n for n in names if n != "SHA256SUMS"]
    assert sum(p.stat().st_size for p in wheels.iterdir() if p.is_file()) < 64 * 2**20


def test_prepare_refuses_an_oversized_folder(wheels, tmp_path):
    result = _prepare(tmp_path / "small", FACEPARSE_WHEELS_LIMIT_MIB="1")
    assert result.returncode == 1 and "over the 1 MiB that can travel" in result.stderr


@pytest.mark.slow
def test_gpu_check_cpu_mode(wheels, tmp_path):
    pytest.importorskip("mmcv.ops")
    out = tmp_path / "out"
    result = subprocess.run(
        ["bash", str(CHECK), "--cpu", str(out), str(wheels)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHON": sys.executable},
    )
    log = (out / "gpu_check.log").read_text() if (out / "gpu_check.log").exists() else ""
    assert result.returncode == 0, result.stderr[-3000:] + log[-3000:]
    r = json.loads((out / "gpu_check.json").read_text())
    assert r["ok"] and r["mode"] == "cpu"
    assert [s["step"] for s in r["steps"]] == [
        "install",
        "env",
        "train_fp32_b2",
        "train_fp32_max",
        "infer",
        "loader",
        "train_fp32_b2_channels_last",
    ]
    assert r["env"]["packages"]["mmseg"] == "1.2.2" and r["env"]["cuda_available"] is False
    train = r["train"]
    assert set(train) == {"fp32_b2", "fp32_max", "fp32_b2_channels_last"}
    assert train["fp32_b2"]["config"] == "configs/demo_tiny.py" and train["fp32_b2"]["images_per_s"] > 0
    assert train["fp32_max"]["batch_size"] == 4 and train["fp32_max"]["flops"]["from"].endswith("train_fp32_b2.json")
    assert r["infer"]["predict"]["images"] == 2 and r["infer"]["tta"]["scales"] == [0.75, 1.0]
    assert [t["images_per_s"] for t in r["loader"]["train"]] == [
        train["fp32_b2"]["images_per_s"],
        train["fp32_max"]["images_per_s"],
    ]
    assert "install: CPU mode keeps the .venv's compiled mmcv" in log
    assert sorted(p.name for p in out.iterdir()) == ["gpu_check.json", "gpu_check.log"]


def test_gpu_mode_needs_wheels(tmp_path):
    result = subprocess.run(["bash", str(CHECK), str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "GPU mode needs WHEELS_DIR" in result.stderr

"""The conda envs for `--sdm conda` pin exactly what requirements.lock pins."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENVS = sorted((ROOT / "workflow" / "envs").glob("*.yaml"))


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[_norm(name)] = version
    return pins


def test_lock_pins_everything_exactly():
    lines = [
        line for line in (ROOT / "requirements.lock").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", line) for line in lines)
    pins = lock_pins()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert pins["mmengine"] == "0.10.7" and pins["mmsegmentation"] == "1.2.2"
    assert pins["snakemake"].startswith("9.")
    assert int(pins["numpy"].split(".")[0]) < 2


@pytest.mark.parametrize("env_file", ENVS, ids=[e.stem for e in ENVS])
def test_env_pins_agree_with_lock(env_file: Path):
    env = yaml.safe_load(env_file.read_text())
    assert "conda-forge" in env["channels"]
    pins = lock_pins()
    conda_deps = [d for d in env["dependencies"] if isinstance(d, str)]
    pip_deps = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    for dep in conda_deps:
        assert re.fullmatch(r"[a-z0-9_\-]+=[0-9][0-9.]*", dep), f"{env_file.name}: conda dep {dep!r} is not pinned"
    assert "python=3.11" in conda_deps
    assert pip_deps, f"{env_file.name}: empty pip section"
    for dep in pip_deps:
        name, sep, version = dep.partition("==")
        assert sep, f"{env_file.name}: {dep!r} is not pinned with =="
        assert pins.get(_norm(name)) == version, (
            f"{env_file.name}: {dep} but requirements.lock has {pins.get(_norm(name))}"
        )


def test_data_env_has_no_torch():
    env = yaml.safe_load((ROOT / "workflow" / "envs" / "data.yaml").read_text())
    pip_deps = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert not any(_norm(d.split("==")[0]) in {"torch", "torchvision", "mmsegmentation"} for d in pip_deps)

"""Everyday commands never redo work and answer at once: a reordered config plans no job, and what
the start-up checks know of each model (parameter count, inherited files, ...) is cached by
everything it depends on, never stale."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from _pipeline import ROOT, run_snakemake
from faceparse import model_facts as model_facts_module
from faceparse.model_facts import FACT_CODE, code_digest, model_facts
from faceparse.workflow import canonical, validate_config

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
PACKAGE = ROOT / "src" / "faceparse"


def reordered(value):
    """Every mapping of ``value`` with its keys in reverse order (the same config)."""
    if isinstance(value, dict):
        return {key: reordered(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(v) for v in value]
    return value


# --- params that mean the same compare the same -------------------------------------------


def test_canonical_sorts_every_mapping_and_keeps_lists():
    value = {"tta": {"scales": [1.0, 0.5], "flip": True}, "models": {"b": {"z": 1, "a": [{"y": 1, "x": 2}]}}}
    got = canonical(value)
    assert got == value
    assert repr(got) == repr(canonical(reordered(value)))
    assert list(got) == ["models", "tta"] and list(got["tta"]) == ["flip", "scales"]
    assert got["tta"]["scales"] == [1.0, 0.5]  # a list's order means something
    assert list(got["models"]["b"]["a"][0]) == ["x", "y"]
    assert repr(canonical({"tta": {"flip": False}})) != repr(canonical({"tta": {"flip": True}}))


@pytest.mark.parametrize("config_file", ["config.yaml", "configs/runs/challenge_2025.yaml"])
def test_a_validated_config_is_the_same_in_any_key_order(config_file):
    written = yaml.safe_load((ROOT / config_file).read_text())
    if written.get("data_root") is None and written.get("data_layout", "synthetic") != "synthetic":
        written["data_root"] = "/data/root"
    first, second = dict(written), reordered(written)
    validate_config(first, SCHEMA)
    validate_config(second, SCHEMA)
    assert repr(first) == repr(second)
    assert list(first) == sorted(first)


# --- the models' facts, cached -------------------------------------------------------------


@pytest.fixture
def configs(tmp_path) -> Path:
    """A copy of the model configs, to edit."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    return tmp_path / "configs"


@pytest.fixture
def package(tmp_path) -> Path:
    """A copy of the code the facts come from, to edit."""
    for name in FACT_CODE:
        source, target = PACKAGE / name, tmp_path / "faceparse" / name
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    return tmp_path / "faceparse"


@pytest.fixture
def worked_out(monkeypatch) -> list[str]:
    """The models whose facts were worked out (not taken from the cache), in order."""
    calls: list[str] = []
    real = model_facts_module._work_out

    def spy(name, spec, config_file, count):
        calls.append(name)
        return real(name, spec, config_file, count)

    monkeypatch.setattr(model_facts_module, "_work_out", spy)
    return calls


def test_facts_are_reused_only_while_nothing_they_depend_on_changes(configs, package, tmp_path, worked_out):
    cache = tmp_path / "cache" / "facts.json"
    models = {"m": {"config": "compact.py", "gpus": 0}}

    def facts(models=models, count=True):
        return model_facts(models, configs, count, cache, package)["m"]

    first = facts()
    assert first.parameters == 1_327_004 and first.backbone == "CompactFaceBackbone" and worked_out == ["m"]
    assert first.sources[0] == str(configs / "compact.py") and len(first.sources) > 1
    assert facts() == first and worked_out == ["m"]  # warm: nothing worked out
    assert facts({"m": {"config": "compact.py", "gpus": 1}}) == first and len(worked_out) == 1  # gpus: no fact
    widened = facts({"m": {"config": "compact.py", "overrides": {"model.backbone.detail": [16, 32, 64]}}})
    assert len(worked_out) == 2 and widened.parameters != first.parameters  # other overrides, other facts
    # an edit of a file the config inherits, however small, and of the network's code
    base = configs / "_base_" / "models" / "compact_face.py"
    base.write_text(base.read_text() + "\n# a comment\n")
    assert facts() == first and len(worked_out) == 3
    network = package / "networks" / "compact.py"
    network.write_text(network.read_text() + "\n# edited\n")
    assert facts() == first and len(worked_out) == 4
    assert facts() == first and len(worked_out) == 4
    # a new _base_ is an edit of the config: the list of inherited files is never stale
    (configs / "extra.py").write_text("crop_note = 'a new base'\n")
    config = configs / "compact.py"
    config.write_text(config.read_text().replace("_base_ = [", "_base_ = ['./extra.py', ", 1))
    changed = facts()
    assert len(worked_out) == 5 and str(configs / "extra.py") in changed.sources
    extra = configs / "extra.py"  # and that new base is watched like the others
    extra.write_text("crop_note = 'edited'\n")
    assert facts() == changed and len(worked_out) == 6
    # counted only when asked, and a count asked for later is made then
    other = {"m": {"config": "compact_large.py"}}
    assert facts(other, count=False).parameters is None and len(worked_out) == 7
    assert facts(other, count=True).parameters == 1_693_203 and len(worked_out) == 8


def test_a_stale_count_cannot_be_answered_after_an_edit_of_a_base_file(configs, package, tmp_path):
    cache = tmp_path / "facts.json"
    models = {"m": {"config": "compact.py"}}
    before = model_facts(models, configs, True, cache, package)["m"].parameters
    base = configs / "_base_" / "models" / "compact_face.py"
    base.write_text(base.read_text().replace("detail=(16, 48, 64)", "detail=(16, 32, 64)"))
    after = model_facts(models, configs, True, cache, package)["m"].parameters
    uncached = model_facts(models, configs, True, None, package)["m"].parameters
    assert after == uncached != before


def test_the_code_digest_covers_the_network_and_config_code(package):
    digest = code_digest(package)
    assert digest == code_digest(package)
    for name in ("mm/backbone.py", "model_configs.py", "networks/compact.py"):
        path = package / name
        text = path.read_text()
        path.write_text(text + "\n")
        assert code_digest(package) != digest, name
        path.write_text(text)
    assert code_digest(package) == digest


def test_a_damaged_cache_is_worked_out_again(configs, tmp_path, worked_out):
    cache = tmp_path / "facts.json"
    models = {"m": {"config": "compact.py"}}
    right = model_facts(models, configs, False, cache)["m"]
    stored = json.loads(cache.read_text())
    (entry,) = stored["models"].values()
    damages = ["{not json", '{"format": 1, "models": []}', json.dumps({**stored, "format": 0})]
    entry["facts"]["parameters"] = True  # not a count
    damages.append(json.dumps(stored))
    for damage in damages:
        cache.write_text(damage)
        assert model_facts(models, configs, False, cache)["m"] == right
    assert len(worked_out) == 1 + len(damages)


def test_a_config_with_problems_is_reported_and_not_remembered(configs, tmp_path, worked_out):
    cache = tmp_path / "facts.json"
    models = {"m": {"config": "compact.py", "overrides": {"train_cfg.max_iterz": 3}}, "n": {"config": "none.py"}}
    for _ in range(2):
        facts = model_facts(models, configs, True, cache)
        assert "models.m.overrides: train_cfg.max_iterz" in facts["m"].problems[0]
        assert "models.n.config" in facts["n"].problems[0] and "does not exist" in facts["n"].problems[0]
    assert worked_out == ["m", "n", "m", "n"]


# --- through Snakemake ----------------------------------------------------------------------


def _dry_run(workdir: Path, *args: str, importtime: bool = False) -> subprocess.CompletedProcess:
    return run_snakemake(workdir, "-n", *args, timeout=600, python_flags=("-X", "importtime") if importtime else ())


def planned_rules(result: subprocess.CompletedProcess) -> set[str]:
    assert result.returncode == 0, result.stderr[-4000:]
    text = result.stdout + result.stderr
    return {line.split()[1].rstrip(":") for line in text.splitlines() if line.startswith(("rule ", "localrule "))}


def _imports(result: subprocess.CompletedProcess, module: str) -> bool:
    return re.search(rf"^import time:.*\|\s+{module}$", result.stderr, re.M) is not None


@pytest.mark.slow
def test_a_reordered_config_plans_nothing_on_a_finished_run(tiny_run):
    config_file = tiny_run / "config.yaml"
    written = config_file.read_text()
    assert planned_rules(_dry_run(tiny_run)) <= {"all"}
    try:
        config_file.write_text(yaml.safe_dump(reordered(yaml.safe_load(written)), sort_keys=False))
        assert planned_rules(_dry_run(tiny_run)) <= {"all", "provenance"}
        changed = yaml.safe_load(written)
        changed["tta"]["flip"] = not changed["tta"]["flip"]
        config_file.write_text(yaml.safe_dump(reordered(changed), sort_keys=False))
        assert "evaluate" in planned_rules(_dry_run(tiny_run))  # a changed value still reruns
    finally:
        config_file.write_text(written)


@pytest.mark.slow
def test_a_warm_dry_run_imports_neither_torch_nor_mmengine(tmp_path):
    demo = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert demo["rules"]["max_params"]
    demo["synthetic"] = {"size": 64, "counts": {"train": 2, "val": 1, "test": 1}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(demo))
    cold = _dry_run(tmp_path, importtime=True)
    assert planned_rules(cold) and _imports(cold, "torch") and _imports(cold, "mmengine")
    warm = _dry_run(tmp_path, importtime=True)
    assert planned_rules(warm) == planned_rules(cold)
    assert not _imports(warm, "torch") and not _imports(warm, "mmengine")
    # a model over the budget is still refused from the cache
    over = dict(demo, rules={**demo["rules"], "max_params": 1_000_000})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(over))
    refused = _dry_run(tmp_path, importtime=True)
    assert refused.returncode != 0 and "1,327,004 parameters" in refused.stdout + refused.stderr
    assert not _imports(refused, "torch")

"""Model configs before any job: what a config inherits, and overrides/select_iter checked at start."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from _pipeline import ROOT, run_snakemake
from faceparse.model_configs import check_models, config_sources, load_config, override_problems

DEMO = ROOT / "configs" / "demo_tiny.py"
SEED = ROOT / "configs" / "seed_convnext_xl.py"


def test_config_sources_follow_base_recursively(tmp_path):
    sources = config_sources(DEMO)
    assert sources[0] == str(DEMO.resolve())
    # the nested base both shipped configs inherit (the glob of configs/_base_/*.py missed it)
    assert str(ROOT / "configs" / "_base_" / "models" / "upernet_timm.py") in sources
    assert str(ROOT / "configs" / "_base_" / "schedule_demo.py") in sources
    assert str(ROOT / "configs" / "_base_" / "schedule_160k.py") in config_sources(SEED)

    # a chain in another folder: a -> sub/b -> ../c (relative to each file), a single-string _base_
    (tmp_path / "sub").mkdir()
    (tmp_path / "c.py").write_text("x = 1\n")
    (tmp_path / "sub" / "b.py").write_text("_base_ = '../c.py'\ny = 2\n")
    (tmp_path / "a.py").write_text("_base_ = ['./sub/b.py']\nz = 3\n")
    assert config_sources(tmp_path / "a.py") == [str(tmp_path / p) for p in ("a.py", "sub/b.py", "c.py")]


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("train_cfgs.max_iters", 24, "no train_cfgs (did you mean train_cfg.max_iters?)"),
        ("train_cfg.max_iter", 24, "no train_cfg.max_iter (did you mean train_cfg.max_iters?)"),
        ("train_cfg.max_iters", "24", "'24' is text, the config's value 800 is a number"),
        ("flip", True, "no flip"),
        ("param_scheduler.2.end", 10, "param_scheduler is a list of 2 entries; no entry 2"),
        ("train_cfg.max_iters.x", 1, "train_cfg.max_iters is a number (800), not a mapping or list"),
        ("model.data_preprocessor.mean", 120.0, "is a number, the config's value"),
        ("default_hooks.logger.log_metric_by_epoch", 0, "0 is a number, the config's value False is a boolean"),
        ("train cfg", 1, "override keys are dotted names"),
    ],
)
def test_override_problems_are_named(key, value, message):
    from mmengine.config import Config

    cfg = Config.fromfile(str(DEMO), import_custom_modules=False).to_dict()
    problems = override_problems(cfg, {key: value})
    assert len(problems) == 1 and message in problems[0], problems


def test_overrides_a_user_may_give_are_accepted():
    from mmengine.config import Config

    demo = Config.fromfile(str(DEMO), import_custom_modules=False).to_dict()
    fine = {
        "train_cfg.max_iters": 1000,
        "optim_wrapper.optimizer.lr": 1e-3,
        "param_scheduler.1.eta_min": 1e-6,
        "model.data_preprocessor.mean": [1.0, 2.0, 3.0],
        "randomness.seed": 3,
        "default_hooks.checkpoint.save_best": "mIoU",
        "model.backbone.pretrained_file": "/w.pth",
        "model.data_preprocessor.size_divisor": None,
    }
    assert override_problems(demo, fine) == []
    seed = Config.fromfile(str(SEED), import_custom_modules=False).to_dict()
    # the README's bf16 switch: AMP's 'dynamic' loss scale becomes a number
    assert override_problems(seed, {"optim_wrapper.dtype": "bfloat16", "optim_wrapper.loss_scale": 1.0}) == []


def test_load_config_merges_and_fits_the_schedule():
    cfg = load_config(DEMO, {"train_cfg.max_iters": 400})
    assert cfg.train_cfg.max_iters == 400 and cfg.param_scheduler[1].end == 400
    with pytest.raises(ValueError, match=r"demo_tiny.py: train_cfg.max_iter: .*did you mean"):
        load_config(DEMO, {"train_cfg.max_iter": 400})


def test_check_models_lists_every_problem_of_every_model(tmp_path):
    models = {
        "a": {"config": "configs/demo_tiny.py", "overrides": {"train_cfgs.max_iters": 24, "train_cfg.max_iters": "24"}},
        "b": {"config": "configs/demo_tiny.py", "select_iter": 300},
        "c": {"config": "configs/missing.py"},
        "d": {"config": "configs/demo_tiny.py", "select_iter": 400, "overrides": {"train_cfg.max_iters": 400}},
    }
    with pytest.raises(ValueError) as err:
        check_models(models, ROOT)
    lines = str(err.value).splitlines()
    assert lines[0] == "config: models have problems:"
    assert len(lines) == 5, lines  # d is fine: 400 = max_iters is always saved
    assert (
        "models.a.overrides: train_cfgs.max_iters" in lines[1] and "models.a.overrides: train_cfg.max_iters" in lines[2]
    )
    assert "models.b.select_iter" in lines[3] and "select_iter=300 is not a checkpoint iteration" in lines[3]
    assert "models.c.config" in lines[4] and "does not exist" in lines[4]
    check_models({"d": models["d"]}, ROOT)


def _project(tmp_path: Path, **model) -> Path:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["models"]["compact"].update(model)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_workflow_refuses_bad_overrides_before_any_job(tmp_path):
    work = _project(tmp_path, overrides={"train_cfg.max_iter": 24}, select_iter=7)
    run = run_snakemake(work, "-n")
    text = run.stdout + run.stderr
    assert run.returncode != 0
    assert (
        "models.compact.overrides: train_cfg.max_iter: the resolved config has no train_cfg.max_iter "
        "(did you mean train_cfg.max_iters?)" in text
    )
    assert "Job stats" not in text and not (work / "results").exists()


def test_workflow_names_a_schema_problem_in_one_line(tmp_path):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["data_layot"] = "mini"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = run_snakemake(tmp_path, "-n")
    text = run.stdout + run.stderr
    assert run.returncode != 0
    assert "config: the top level: Additional properties are not allowed ('data_layot' was unexpected)" in text
    assert "properties:" not in text and len(text.splitlines()) < 12, text  # not the schema

"""The challenge's later rules: a parameter budget, no pretrained weights, no ensembles, F-score."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from _pipeline import ROOT, run_snakemake
from faceparse.model_configs import load_config, pretrained_sources
from faceparse.workflow import check_rules

BUDGET = 1_821_085
RULES = {"max_params": BUDGET, "pretrained": False, "ensembles": False}


def _config(models: dict, rules: dict = RULES, ensembles: dict | None = None) -> dict:
    return {"models": models, "rules": rules, "ensembles": ensembles or {}}


def test_pretrained_loading_is_found_wherever_it_is():
    assert pretrained_sources(load_config(ROOT / "configs" / "demo_tiny.py").to_dict()) == []
    seed = pretrained_sources(load_config(ROOT / "configs" / "seed_convnext_xl.py").to_dict())
    assert seed == ["model.backbone.pretrained=True (weights from the hub)"]
    cfg = {
        "load_from": "x.pth",
        "model": {
            "backbone": {"pretrained_file": "/w.pth"},
            "decode_head": {"init_cfg": {"type": "Pretrained", "checkpoint": "h.pth"}},
            "pretrained": "p.pth",
        },
    }
    found = pretrained_sources(cfg)
    assert found == [
        "load_from='x.pth' (a checkpoint to start from)",
        "model.backbone.pretrained_file='/w.pth' (a weights file)",
        "model.decode_head.init_cfg: Pretrained from 'h.pth'",
        "model.pretrained='p.pth' (a weights file)",
    ]


def test_rules_refuse_a_model_over_budget_pretrained_weights_and_ensembles():
    models = {"tiny": {"config": "configs/demo_tiny.py"}, "seed": {"config": "configs/seed_convnext_xl.py"}}
    with pytest.raises(ValueError) as err:
        check_rules(_config(models, ensembles={"pair": {"models": ["tiny", "seed"]}}), ROOT)
    lines = str(err.value).splitlines()
    assert lines[0] == "config: the challenge's rules refuse:"
    assert "ensembles: ['pair']: the rules allow no ensembles" in lines[1]
    assert "models.tiny: 12,039,443 parameters; the rules allow fewer than 1,821,085" in lines[2]
    assert "models.seed: loads pretrained weights" in lines[3] and "model.backbone.pretrained=True" in lines[3]
    assert "models.seed: 391,039,526 parameters" in lines[4] and len(lines) == 5


def test_a_model_that_cannot_be_built_is_named_not_a_traceback(tmp_path):
    broken = tmp_path / "broken.py"  # a backbone argument the network refuses
    broken.write_text(
        f"_base_ = ['{ROOT / 'configs' / 'compact.py'}']\nmodel = dict(backbone=dict(full_res_decoder=True))\n"
    )
    with pytest.raises(ValueError) as err:
        check_rules(_config({"broken": {"config": str(broken)}, "tiny": {"config": "configs/demo_tiny.py"}}), ROOT)
    lines = str(err.value).splitlines()
    assert f"models.broken: {broken}: the model cannot be built to count its parameters" in lines[1]
    assert "full_res_decoder needs full_res channels" in lines[1]
    assert "models.tiny: 12,039,443 parameters" in lines[2]  # the other models are still checked


def test_the_2022_rules_allow_everything_and_a_budget_is_a_strict_bound():
    models = {"tiny": {"config": "configs/demo_tiny.py"}, "seed": {"config": "configs/seed_convnext_xl.py"}}
    check_rules(_config(models, rules={}, ensembles={"pair": {"models": ["tiny", "seed"]}}), ROOT)
    tiny = {"tiny": {"config": "configs/demo_tiny.py"}}
    check_rules(_config(tiny, rules={"max_params": 12_039_444}), ROOT)
    with pytest.raises(ValueError, match="12,039,443 parameters; the rules allow fewer than 12,039,443"):
        check_rules(_config(tiny, rules={"max_params": 12_039_443}), ROOT)


def test_workflow_refuses_before_any_job(tmp_path):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert config["rules"] == RULES and config["selection"] == {"metric": "mF1"}  # the demo's own rules
    config["models"]["demo_tiny"] = {"config": "configs/demo_tiny.py", "gpus": 0}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = run_snakemake(tmp_path, "-n")
    text = run.stdout + run.stderr
    assert run.returncode != 0 and "models.demo_tiny: 12,039,443 parameters" in text
    assert "models.compact" not in text  # the compact model keeps to the rules
    assert "Job stats" not in text and not (tmp_path / "results").exists()


def test_f_score_during_validation_is_the_projects_f_score():
    """FaceParseMetric's mF1 (18 foreground classes) and mF1_19 equal faceparse.predict.metrics'
    scores of the same pixels, dataset-level (areas summed over images, absent classes left out)."""
    pytest.importorskip("mmcv.ops")
    import torch

    from faceparse.mm.evaluation import FaceParseMetric
    from faceparse.predict.metrics import confusion_matrix, scores

    rng = np.random.default_rng(0)
    metric = FaceParseMetric(iou_metrics=["mIoU"])
    metric.dataset_meta = {"classes": [str(i) for i in range(19)]}
    truth_all, pred_all = [], []
    for _ in range(3):
        truth = rng.integers(0, 12, (32, 32))  # classes 12..18 absent: left out of the means
        pred = np.where(rng.random((32, 32)) < 0.7, truth, rng.integers(0, 14, (32, 32)))
        truth[0, :4] = 255  # ignored
        metric.results.append(metric.intersect_and_union(torch.from_numpy(pred), torch.from_numpy(truth), 19, 255))
        truth_all.append(truth)
        pred_all.append(pred)
    logged = metric.compute_metrics(metric.results)
    expected = scores(confusion_matrix(np.stack(truth_all), np.stack(pred_all)))
    assert logged["mF1"] == pytest.approx(round(expected["mF1"], 2))
    assert logged["mF1_19"] == pytest.approx(round(float(np.nanmean(expected["F1"])), 2))
    assert logged["mIoU"] == pytest.approx(round(expected["mIoU"], 2))
    assert logged["mF1"] != logged["mF1_19"]

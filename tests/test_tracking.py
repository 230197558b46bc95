"""Experiment tracking with MLflow (``tracking: mlflow``), read back with MLflow's own client."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from faceparse.records import TrainSummary
from faceparse.train.tracking import Tracking, backend_args, log_selection, tracking_of
from test_train import DEMO, FAST, REPO, _run, _train_steps, make_tiny_dataset, tiny_config


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("data"))


def _store(tmp_path: Path, experiment: str = "tiny") -> Tracking:
    return Tracking.of(f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}", experiment)


def test_a_tracked_run_logs_config_fingerprint_parameters_curves_and_selection(data, tmp_path):
    from mlflow import MlflowClient

    from faceparse.train.select import select
    from faceparse.train.step import train

    tracking = _store(tmp_path)
    config, out, work_dir = tiny_config(tmp_path), tmp_path / "train.json", tmp_path / "train"
    train(config, data["validation"], data["stats"], out, work_dir, overrides=FAST, threads=1, tracking=tracking)
    summary = TrainSummary.read(out)

    # tracking off: the same fingerprint finds the same run finished; nothing is retrained
    train(config, data["validation"], data["stats"], out, work_dir, overrides=FAST, threads=1)
    assert TrainSummary.read(out).fingerprint == summary.fingerprint
    assert _train_steps(_run(out)) == [[1, 2, 3, 4]]

    # a longer schedule resumes the run, tracked again: its MLflow run continues
    longer = {**FAST, "train_cfg.max_iters": 6, "param_scheduler.1.end": 6}
    train(config, data["validation"], data["stats"], out, work_dir, overrides=longer, threads=1, tracking=tracking)
    best = select(out, tmp_path / "best.json", metric="mF1", tracking=tracking)

    client = MlflowClient(tracking.uri)
    experiment = client.get_experiment_by_name("tiny")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_name for r in runs] == [_run(out).name]  # one run, named after the run folder
    run = runs[0]
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["fingerprint"] == summary.fingerprint
    assert params["parameters"] == str(summary.parameters) and summary.parameters > 0
    # the resolved config, flattened; its first start's values (MLflow params cannot change)
    assert params["train_cfg.max_iters"] == "4" and params["resume"] == "False"
    assert params["model.decode_head.loss_decode.type"] == "ClassWeightedCrossEntropyLoss"

    def steps(key: str) -> list[int]:
        return sorted(m.step for m in client.get_metric_history(run.info.run_id, key))

    assert steps("loss") == steps("lr") == [1, 2, 3, 4, 5, 6]
    assert steps("mIoU") == steps("mF1") == [2, 4, 6]
    assert steps("selected/mF1") == steps("selected/mIoU") == [best["iter"]]
    selected = client.get_metric_history(run.info.run_id, "selected/mF1")[0].value
    assert selected == pytest.approx(best["score"])
    assert run.data.tags["selected.checkpoint"] == Path(best["checkpoint"]).name
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "config.py" in artifacts
    assert run.info.artifact_uri.startswith((tmp_path / "results" / "mlartifacts" / "tiny").as_uri())


def test_tracking_is_not_part_of_the_fingerprint(data, tmp_path):
    from faceparse.mm.config import build_config, track_with_mlflow
    from faceparse.train.fingerprint import training_fingerprint

    cfg = build_config(DEMO, data["validation"], data["stats"], work_dir=tmp_path / "run")
    untracked = training_fingerprint(cfg, data["validation"], data["stats"], None, False, 0, 1)
    track_with_mlflow(cfg, **backend_args(_store(tmp_path), "run", untracked["sha256"], 7))
    backends = cfg.visualizer.vis_backends
    assert [b["type"] for b in backends] == ["LocalVisBackend", "TensorboardVisBackend", "MLflowRunVisBackend"]
    assert backends[-1]["params"] == {"fingerprint": untracked["sha256"], "parameters": 7}
    assert backends[-1]["exp_name"] == "tiny" and backends[-1]["run_name"] == "run"
    assert training_fingerprint(cfg, data["validation"], data["stats"], None, False, 0, 1) == untracked


def test_tracking_config_is_checked_and_resolved(tmp_path, monkeypatch):
    from snakemake.utils import validate

    schema = str(REPO / "workflow" / "schemas" / "config.schema.yaml")
    models = {"demo": {"config": "configs/demo_tiny.py"}}
    config = {"models": models}
    validate(config, schema)
    assert config["tracking"] is None and tracking_of(config, "demo") is None

    config = {"models": models, "tracking": "mlflow"}
    validate(config, schema)
    monkeypatch.chdir(tmp_path)
    tracking = tracking_of(config, "demo")
    assert tracking == Tracking(f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}", "demo")
    assert tracking.artifact_location() == (tmp_path / "results" / "mlartifacts" / "demo").as_uri()
    assert Tracking.of("http://localhost:5000", "demo").artifact_location() is None

    for bad in (
        {"tracking": "wandb"},
        {"tracking": "mlflow", "tracking_uri": "file:results/mlruns"},
        {"tracking": "mlflow", "tracking_uri": "results/mlruns"},
    ):
        with pytest.raises(Exception, match="tracking"):
            validate({"models": models, **bad}, schema)


def test_selection_of_an_untracked_run_is_not_logged(tmp_path, caplog):
    choice = {"checkpoint": str(tmp_path / "iter_4.pth"), "iter": 4, "mIoU": 50.0, "metric": "mIoU", "score": 50.0}
    with caplog.at_level(logging.WARNING):
        assert log_selection(_store(tmp_path), "0123456789abcdef", choice) is None
    assert "trained with tracking off" in caplog.text

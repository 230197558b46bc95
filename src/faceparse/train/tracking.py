"""Optional experiment tracking with MLflow (config ``tracking: mlflow``).

One MLflow experiment per model (named after it), one MLflow run per training run (named after
its run folder, ``runs/<fingerprint[:16]>``). The training process logs the resolved config,
``fingerprint`` and ``parameters`` (params) and the curves through
:class:`faceparse.mm.tracking.MLflowRunVisBackend` (added by the train step); the select step
adds the chosen checkpoint (:func:`log_selection`). Tracking is not part of the training
fingerprint and not a param of the train rule: turning it on or off retrains nothing. mlflow is
imported only where a run is logged, never while the workflow's DAG is built.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SQLITE = "sqlite:///"


@dataclass(frozen=True)
class Tracking:
    """Where a model's runs are logged: an MLflow tracking URI and the experiment (the model's name)."""

    uri: str
    experiment: str

    @classmethod
    def of(cls, uri: str, experiment: str) -> Tracking:
        """``uri`` with a relative SQLite path made absolute (from the working directory, the
        project's for a Snakemake job), so the training process and the select step share one store."""
        if uri.startswith(_SQLITE) and not uri.startswith(_SQLITE + "/"):
            uri = _SQLITE + str(Path(uri[len(_SQLITE) :]).resolve())
        return cls(uri, experiment)

    def store_file(self) -> Path | None:
        """The SQLite file of a local store (None for a server)."""
        return Path(self.uri[len(_SQLITE) :]) if self.uri.startswith(_SQLITE) else None

    def artifact_location(self) -> str | None:
        """Where a new experiment keeps its runs' artifacts: ``mlartifacts/{experiment}`` next to a
        SQLite store (not MLflow's ``./mlruns`` of the working directory); a server's own default."""
        store = self.store_file()
        return (store.parent / "mlartifacts" / self.experiment).as_uri() if store is not None else None


def tracking_of(config: Mapping, model: str) -> Tracking | None:
    """The tracking of ``model`` by the workflow's (validated) config; None when ``tracking`` is off."""
    if config.get("tracking") != "mlflow":
        return None
    return Tracking.of(config["tracking_uri"], model)


def backend_args(tracking: Tracking, run_name: str, fingerprint: str, parameters: int) -> dict:
    """The arguments of :func:`faceparse.mm.config.track_with_mlflow` for a training run; makes the
    folder of a SQLite store (SQLite does not create it)."""
    store = tracking.store_file()
    if store is not None:
        store.parent.mkdir(parents=True, exist_ok=True)
    return dict(
        tracking_uri=tracking.uri,
        experiment=tracking.experiment,
        run_name=run_name,
        params={"fingerprint": fingerprint, "parameters": int(parameters)},
        artifact_location=tracking.artifact_location(),
    )


def log_selection(tracking: Tracking, run_name: str, choice: Mapping) -> str | None:
    """Mark the selected checkpoint in the MLflow run ``run_name``: metrics ``selected/{metric}``
    (and ``selected/mIoU``) at its iteration, tags ``selected.checkpoint`` and ``selected.metric``.
    Returns the run's id; None (with a warning) when the run was trained with tracking off."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking.uri)
    experiment = client.get_experiment_by_name(tracking.experiment)
    runs = (
        client.search_runs([experiment.experiment_id], f"attributes.run_name = '{run_name}'", max_results=1)
        if experiment is not None
        else []
    )
    if not runs:
        log.warning(
            "MLflow: no run %r in experiment %r at %s (trained with tracking off?): selection not logged",
            run_name,
            tracking.experiment,
            tracking.uri,
        )
        return None
    run_id = runs[0].info.run_id
    scores = {choice["metric"]: choice["score"], "mIoU": choice["mIoU"]}
    for metric, score in scores.items():
        if score is not None:
            client.log_metric(run_id, f"selected/{metric}", float(score), step=int(choice["iter"]))
    client.set_tag(run_id, "selected.checkpoint", Path(choice["checkpoint"]).name)
    client.set_tag(run_id, "selected.metric", choice["metric"])
    log.info("MLflow: selection logged to run %s (%s) of experiment %r", run_name, run_id, tracking.experiment)
    return run_id

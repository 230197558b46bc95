"""MLflowRunVisBackend: mmengine's MLflow backend, continuing one MLflow run across resumes.

:func:`faceparse.mm.config.track_with_mlflow` adds it to a config's ``visualizer.vis_backends``
(config ``tracking: mlflow``). mlflow itself is imported only when the backend first logs.
"""

from __future__ import annotations

from mmengine.config import Config
from mmengine.visualization.vis_backend import MLflowVisBackend, force_init_env
from mmseg.registry import VISBACKENDS


@VISBACKENDS.register_module()
class MLflowRunVisBackend(MLflowVisBackend):
    """``MLflowVisBackend`` that logs into the MLflow run named ``run_name`` in ``exp_name`` when
    there is one (a resumed training continues its curves), else starts it. Config params a run
    logged when it started keep their values (MLflow params cannot change): a resume's
    ``resume``/``load_from`` are not logged again."""

    def _init_env(self) -> None:
        """Start (or reopen) the named run in the experiment, then let mmengine log tags and params."""
        import mlflow

        mlflow.set_tracking_uri(self._tracking_uri)
        name = self._exp_name or "Default"
        experiment = mlflow.get_experiment_by_name(name)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else mlflow.create_experiment(name, artifact_location=self._artifact_location)
        )
        earlier = []
        if self._run_name:
            run_name = self._run_name.replace("'", "\\'")
            earlier = mlflow.search_runs(
                [experiment_id],
                filter_string=f"attributes.run_name = '{run_name}'",
                max_results=1,
                output_format="list",
            )
        mlflow.start_run(
            run_id=earlier[0].info.run_id if earlier else None, experiment_id=experiment_id, run_name=self._run_name
        )
        super()._init_env()

    @force_init_env
    def add_config(self, config: Config, **kwargs) -> None:
        """The whole flattened config as params (the keys the run has not logged yet; unlike
        mmengine's, ``tracked_config_keys`` is not used) and ``config.py`` as an artifact."""
        self.cfg = config
        run_id = self._mlflow.active_run().info.run_id
        logged = self._mlflow.get_run(run_id).data.params
        params = self._flatten(config.to_dict())
        self._mlflow.log_params({k: v for k, v in params.items() if k not in logged})
        self._mlflow.log_text(config.pretty_text, "config.py")

"""A model config's test pipeline, as the predict steps and the export use it."""
from __future__ import annotations

from collections.abc import Sequence


def config_test_pipeline(cfg) -> list[dict]:
    """The config's test pipeline (what ``Runner.test()`` would run)."""
    if cfg.get("test_dataloader") and cfg.test_dataloader.get("dataset", {}).get("pipeline"):
        pipeline = cfg.test_dataloader.dataset.pipeline
    elif cfg.get("test_pipeline"):
        pipeline = cfg.test_pipeline
    else:
        raise KeyError("config has neither test_dataloader.dataset.pipeline nor test_pipeline")
    return [dict(t) for t in pipeline]


def without_annotations(pipeline: Sequence[dict]) -> list[dict]:
    """Drop ``LoadAnnotations``: ground truth is read separately (test images have none)."""
    return [dict(t) for t in pipeline if t.get("type") != "LoadAnnotations"]

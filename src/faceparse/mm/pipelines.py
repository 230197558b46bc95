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


def normalisation(cfg) -> dict:
    """The data preprocessor's mean/std (0-255) and the channel order the model sees."""
    pre = cfg.model.get("data_preprocessor") or {}
    if pre.get("mean") is None or pre.get("std") is None:
        raise ValueError("config: model.data_preprocessor has no mean/std to put into the exported graph")
    # mmseg loads BGR; bgr_to_rgb (or rgb_to_bgr) swaps before normalising, so the model sees RGB
    swaps = bool(pre.get("bgr_to_rgb", False) or pre.get("rgb_to_bgr", False))
    return {
        "mean": [float(v) for v in pre["mean"]],
        "std": [float(v) for v in pre["std"]],
        "model_channel_order": "RGB" if swaps else "BGR",
    }


def input_resize(cfg) -> dict:
    """The model's input size: ``{"scale": [w, h] or None, "keep_ratio": bool}`` from the test
    pipeline's ``Resize`` (None: photos are used at their own size)."""
    resizes = [t for t in config_test_pipeline(cfg) if t.get("type") in ("Resize", "mmseg.Resize")]
    if not resizes or resizes[0].get("scale") is None:
        return {"scale": None, "keep_ratio": True}
    scale = resizes[0]["scale"]
    scale = [int(scale), int(scale)] if isinstance(scale, int) else [int(s) for s in scale]
    return {"scale": scale, "keep_ratio": bool(resizes[0].get("keep_ratio", False))}

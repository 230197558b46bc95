"""The bench's baselines (configs/baselines/) train exactly like configs/compact.py: only the
network differs (and, for the equal-time UNet, the length of the schedule)."""

from __future__ import annotations

import pytest

from _pipeline import ROOT
from faceparse.model_configs import load_config

COMPACT = ROOT / "configs" / "compact.py"
BASELINES = sorted((ROOT / "configs" / "baselines").glob("*.py"))
SAME = ("train_pipeline", "train_dataloader", "optim_wrapper", "data_preprocessor")


def test_there_are_baselines():
    assert {p.stem for p in BASELINES} >= {"fast_scnn", "unet_small", "unet_small_equal_time"}


@pytest.mark.parametrize("path", BASELINES, ids=lambda p: p.stem)
def test_a_baseline_trains_like_the_compact_model(path):
    compact, baseline = load_config(COMPACT), load_config(path)
    for key in SAME:
        assert baseline[key] == compact[key], key
    assert baseline.model.decode_head.loss_decode == compact.model.decode_head.loss_decode
    for aux in baseline.model.get("auxiliary_head") or []:  # the same losses at mmseg's 0.4
        assert [dict(loss, loss_weight=1.0) for loss in aux.loss_decode] == compact.model.decode_head.loss_decode
        assert {loss["loss_weight"] for loss in aux.loss_decode} == {0.4}
    assert baseline.model.backbone.type != compact.model.backbone.type
    if path.stem.endswith("equal_time"):
        assert baseline.train_cfg.max_iters < compact.train_cfg.max_iters
        assert baseline.param_scheduler[-1]["end"] == baseline.train_cfg.max_iters  # a whole schedule
    else:
        assert baseline.train_cfg == compact.train_cfg and baseline.param_scheduler == compact.param_scheduler


def test_the_large_compact_model_trains_like_the_demos():
    """configs/compact_large.py (the GPU widths) is the same network file and recipe at other widths."""
    compact, large = load_config(COMPACT), load_config(ROOT / "configs" / "compact_large.py")
    for key in SAME + ("train_cfg", "param_scheduler"):
        assert large[key] == compact[key], key
    assert large.model.decode_head == compact.model.decode_head
    assert large.model.backbone.type == compact.model.backbone.type
    assert large.model.backbone != compact.model.backbone

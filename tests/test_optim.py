"""Layer-wise lr decay on timm ConvNeXt parameter names."""

import pytest
import torch
from torch import nn

BASE_LR, WD = 1e-3, 0.05


class Seg(nn.Module):
    def __init__(self):
        super().__init__()
        from faceparse.mm.backbone import TimmFeatureBackbone

        self.backbone = TimmFeatureBackbone("convnext_atto", pretrained=False, out_norms=True)
        self.decode_head = nn.Conv2d(320, 19, 1)


def _groups(decay_type="stage_wise"):
    from mmengine.optim import build_optim_wrapper

    import faceparse.mm  # noqa: F401

    model = Seg()
    wrapper = build_optim_wrapper(
        model,
        dict(
            type="OptimWrapper",
            optimizer=dict(type="AdamW", lr=BASE_LR, weight_decay=WD),
            constructor="TimmLayerDecayOptimizerConstructor",
            paramwise_cfg=dict(num_layers=12, decay_rate=0.9, decay_type=decay_type),
        ),
    )
    lr, wd = {}, {}
    for group in wrapper.optimizer.param_groups:
        for name in group["param_names"]:
            lr[name], wd[name] = group["lr"], group["weight_decay"]
    assert set(lr) == {n for n, _ in model.named_parameters()}
    return wrapper, lr, wd


def test_stage_wise_lrs():
    wrapper, lr, wd = _groups()
    p = "backbone.timm_model."
    assert lr[p + "stem_0.weight"] == pytest.approx(BASE_LR * 0.9**13)
    assert lr[p + "stages_2.downsample.1.weight"] == pytest.approx(BASE_LR * 0.9**13)
    for stage in range(4):
        assert lr[p + f"stages_{stage}.blocks.0.conv_dw.weight"] == pytest.approx(BASE_LR * 0.9 ** (12 - stage))
    assert lr[p + "stages_3.blocks.1.mlp.fc2.weight"] == pytest.approx(BASE_LR * 0.9**9)
    assert lr["backbone.out_norms.2.weight"] == pytest.approx(BASE_LR)
    assert lr["decode_head.weight"] == pytest.approx(BASE_LR)
    # the logged lr (first group) is the base lr
    assert wrapper.optimizer.param_groups[0]["lr"] == pytest.approx(BASE_LR)


def test_no_weight_decay_for_norms_biases_gamma():
    _, _, wd = _groups()
    p = "backbone.timm_model."
    assert wd[p + "stages_1.blocks.0.gamma"] == 0
    assert wd[p + "stages_1.blocks.0.norm.weight"] == 0
    assert wd[p + "stages_1.blocks.0.mlp.fc1.bias"] == 0
    assert wd[p + "stem_1.weight"] == 0  # the stem's LayerNorm
    assert wd["backbone.out_norms.0.bias"] == 0 and wd["decode_head.bias"] == 0
    assert wd[p + "stages_1.blocks.0.mlp.fc1.weight"] == WD
    assert wd[p + "stem_0.weight"] == WD and wd["decode_head.weight"] == WD


def test_layer_wise_ids():
    from faceparse.mm.optim import layer_wise_id, stage_wise_id

    p = "backbone.timm_model."
    assert layer_wise_id(p + "stem_0.weight", 12) == 0
    assert layer_wise_id(p + "stages_0.blocks.2.gamma", 12) == 1
    assert layer_wise_id(p + "stages_1.downsample.0.weight", 12) == 2
    assert layer_wise_id(p + "stages.2.blocks.26.conv_dw.weight", 12) == 3 + 26 // 3
    assert layer_wise_id(p + "stages_3.downsample.1.weight", 12) == 12
    assert layer_wise_id("decode_head.conv_seg.weight", 12) == 13
    assert stage_wise_id("backbone.stages.3.blocks.0.norm.weight", 12) == 4  # un-flattened names too
    _, lr, _ = _groups("layer_wise")
    assert lr[p + "stages_2.blocks.1.conv_dw.weight"] == pytest.approx(BASE_LR * 0.9**10)


def test_unknown_backbone_layout_is_an_error():
    from faceparse.mm.optim import stage_wise_id

    with pytest.raises(ValueError, match="not a ConvNeXt"):
        stage_wise_id("backbone.timm_model.layer1.0.conv1.weight", 12)
    with pytest.raises(ValueError, match="decay_type"):
        from mmengine.optim import build_optim_wrapper

        build_optim_wrapper(
            Seg(),
            dict(
                optimizer=dict(type="AdamW", lr=1e-3),
                constructor="TimmLayerDecayOptimizerConstructor",
                paramwise_cfg=dict(decay_type="block_wise"),
            ),
        )


def test_frozen_parameters_are_skipped():
    from mmengine.optim import build_optim_wrapper

    import faceparse.mm  # noqa: F401

    model = Seg()
    model.backbone.timm_model.stem_0.weight.requires_grad_(False)
    wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(type="AdamW", lr=1e-3),
            constructor="TimmLayerDecayOptimizerConstructor",
            paramwise_cfg=dict(num_layers=12, decay_rate=0.9),
        ),
    )
    names = [n for g in wrapper.optimizer.param_groups for n in g["param_names"]]
    assert "backbone.timm_model.stem_0.weight" not in names
    assert isinstance(wrapper.optimizer, torch.optim.AdamW)

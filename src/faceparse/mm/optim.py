"""Layer-wise learning-rate decay for timm ConvNeXt backbones."""

from __future__ import annotations

import logging
import re

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS

# Backbone parameter names, after the wrapper prefixes are removed:
#   stem.0.weight / stem_0.weight              (the patchify stem)
#   stages.2.downsample.1.weight / stages_2... (the downsampling before stage 2)
#   stages.2.blocks.17.conv_dw.weight          (block 17 of stage 2)
#   out_norms.3.weight, norm_pre..., head...    (anything after the stages)
_PREFIX = re.compile(r"^backbone\.(?:timm_model\.)?")
_STEM = re.compile(r"^stem[._]")
_DOWNSAMPLE = re.compile(r"^stages[._](\d+)\.downsample\b")
_BLOCK = re.compile(r"^stages[._](\d+)\.blocks\.(\d+)\.")
_AFTER_STAGES = re.compile(r"^(?:out_norms|norm|head|fc)\b")


def convnext_part(name: str):
    """Classify a model parameter: ('stem',), ('downsample', i), ('block', i, j), ('top',).

    'top' is everything outside the backbone (heads) and the backbone's output
    norms. Raises ValueError for a backbone parameter of an unknown layout.
    """
    if not _PREFIX.match(name):
        return ("top",)
    rest = _PREFIX.sub("", name)
    if _STEM.match(rest):
        return ("stem",)
    if m := _DOWNSAMPLE.match(rest):
        return ("downsample", int(m.group(1)))
    if m := _BLOCK.match(rest):
        return ("block", int(m.group(1)), int(m.group(2)))
    if _AFTER_STAGES.match(rest):
        return ("top",)
    raise ValueError(f"layer decay: not a ConvNeXt backbone parameter: {name!r}")


def stage_wise_id(name: str, num_layers: int) -> int:
    """The seed's 'stage_wise' id (mmseg ``get_stage_id_for_convnext``), 0..num_layers+1.

    stem and every downsampling layer -> 0 (mmpretrain's ``downsample_layers``);
    stage i's blocks -> i + 1; the rest (heads, output norms) -> num_layers + 1.
    """
    part = convnext_part(name)
    if part[0] in ("stem", "downsample"):
        return 0
    if part[0] == "block":
        return part[1] + 1
    return num_layers + 1


def layer_wise_id(name: str, num_layers: int) -> int:
    """mmseg's 'layer_wise' ConvNeXt id (``get_layer_id_for_convnext``), 0..num_layers+1."""
    part = convnext_part(name)
    if part[0] == "stem":
        return 0
    if part[0] == "downsample":
        return {1: 2, 2: 3}.get(part[1], 0 if part[1] == 0 else num_layers)
    if part[0] == "block":
        stage, block = part[1], part[2]
        if stage == 0:
            return 1
        if stage == 1:
            return 2
        if stage == 2:
            return min(3 + block // 3, num_layers)
        return num_layers
    return num_layers + 1


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TimmLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay for a timm ConvNeXt in :class:`TimmFeatureBackbone`.

    The mmseg ``LearningRateDecayOptimizerConstructor`` expects mmpretrain's
    ConvNeXt names (``backbone.downsample_layers``, ``backbone.stages.i.j``);
    this one reads timm's (``stem``, ``stages.{i}.downsample``,
    ``stages.{i}.blocks.{j}``) and assigns the same ids. A parameter with id
    ``k`` gets ``lr = base_lr * decay_rate ** (num_layers + 1 - k)``: the heads
    train at ``base_lr``, stage 3 at ``base_lr * 0.9 ** 9`` for the seed's
    ``stage_wise`` 12 layers, the stem at ``base_lr * 0.9 ** 13``.
    One-dimensional parameters (norms, biases, layer-scale ``gamma``) get no
    weight decay.

    ``paramwise_cfg``: ``num_layers`` (12), ``decay_rate`` (0.9), ``decay_type``
    (``'stage_wise'`` | ``'layer_wise'``).
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None) -> None:
        # An empty paramwise_cfg would make the base class skip add_params.
        super().__init__(optim_wrapper_cfg, dict(paramwise_cfg or {}) or dict(decay_type="stage_wise"))

    def add_params(self, params: list, module, **kwargs) -> None:
        cfg = self.paramwise_cfg
        num_layers = int(cfg.get("num_layers", 12))
        decay_rate = float(cfg.get("decay_rate", 0.9))
        decay_type = cfg.get("decay_type", "stage_wise")
        layer_id = {"stage_wise": stage_wise_id, "layer_wise": layer_wise_id}.get(decay_type)
        if layer_id is None:
            raise ValueError(f"layer decay: decay_type must be stage_wise or layer_wise, got {decay_type!r}")
        groups: dict[str, dict] = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            no_decay = param.ndim == 1 or name.endswith(".bias") or name.endswith("gamma")
            lid = layer_id(name, num_layers)
            group_name = f"layer_{lid}_{'no_decay' if no_decay else 'decay'}"
            if group_name not in groups:
                scale = decay_rate ** (num_layers + 1 - lid)
                groups[group_name] = dict(
                    params=[],
                    param_names=[],
                    group_name=group_name,
                    lr_scale=scale,
                    lr=scale * self.base_lr,
                    weight_decay=0.0 if no_decay else self.base_wd,
                )
            groups[group_name]["params"].append(param)
            groups[group_name]["param_names"].append(name)
        # Highest lr first: mmengine logs the first group's lr as "lr".
        ordered = sorted(groups.values(), key=lambda g: (-g["lr_scale"], g["group_name"]))
        summary = ", ".join(f"{g['group_name']}: lr x{g['lr_scale']:.3g} ({len(g['params'])})" for g in ordered)
        print_log(
            f"layer decay ({decay_type}, {num_layers} layers, rate {decay_rate}): {summary}",
            logger="current",
            level=logging.INFO,
        )
        params.extend(ordered)

"""A timm feature backbone for mmsegmentation (no mmpretrain needed)."""

from __future__ import annotations

import copy
from typing import Any

import timm
import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from timm.layers import LayerNorm2d
from torch import nn


@MODELS.register_module()
class TimmFeatureBackbone(BaseModule):
    """Multi-scale features of any timm model (``features_only=True``).

    Like mmseg's ``TIMMBackbone``, plus what the faceparse configs need:

    - ``out_norms``: a channels-first LayerNorm on each returned feature map, as
      mmpretrain's ConvNeXt has (``norm0..norm3``; the seed solution's backbone);
    - ``pretrained_file``: load the named timm weights from a local file (an
      offline machine); ``pretrained=True`` alone downloads them via timm/HF hub.
      Either way the weights are loaded before the feature wrapper is built, so
      the names match. Only training needs them: a model built to load a
      checkpoint goes through :func:`pretrained_off` (evaluate, predict, bench).

    Parameter names are ``timm_model.stem_0``, ``timm_model.stages_1.downsample.0``,
    ``timm_model.stages_2.blocks.5...`` (timm flattens ``stem``/``stages``), plus
    ``out_norms.{i}``; :class:`faceparse.mm.optim.TimmLayerDecayOptimizerConstructor`
    understands them.

    Args:
        model_name: timm model name, e.g. ``'convnext_xlarge.fb_in22k'``.
        pretrained: load the model's pretrained weights.
        pretrained_file: a local file with those weights (implies ``pretrained``).
        out_indices: which feature levels to return.
        out_norms: add a LayerNorm2d per returned level.
        in_channels: input channels.
        init_cfg: mmengine init config (unused by default).
        **kwargs: passed to ``timm.create_model`` (``drop_path_rate``,
            ``ls_init_value``, ...).
    """

    def __init__(
        self,
        model_name: str,
        pretrained: bool = False,
        pretrained_file: str | None = None,
        out_indices=(0, 1, 2, 3),
        out_norms: bool = False,
        in_channels: int = 3,
        init_cfg=None,
        **kwargs,
    ) -> None:
        super().__init__(init_cfg)
        if pretrained_file:
            pretrained = True
            kwargs["pretrained_cfg_overlay"] = dict(file=str(pretrained_file))
        self.model_name = model_name
        self.timm_model = timm.create_model(
            model_name,
            pretrained=pretrained,
            features_only=True,
            out_indices=tuple(out_indices),
            in_chans=in_channels,
            **kwargs,
        )
        self.out_channels = list(self.timm_model.feature_info.channels())
        self.out_norms = nn.ModuleList([LayerNorm2d(c) for c in self.out_channels]) if out_norms else None
        if pretrained:
            # Keep timm's loaded weights: mmengine must not re-initialise them.
            self._is_init = True

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.timm_model(x)
        if self.out_norms is not None:
            features = [norm(f) for norm, f in zip(self.out_norms, features)]
        return tuple(features)


def pretrained_off(model_cfg: Any) -> Any:
    """A copy of an mmseg model config whose build loads no pretrained weights.

    For a model whose weights all come from a checkpoint (evaluate, predict)
    or that is only timed (bench): ``pretrained=True`` would download the
    backbone's weights (1.4 GB for ConvNeXt-XL; an error on an offline node)
    and a ``pretrained_file`` may be missing on the machine that runs
    inference. Switches off, at any depth: ``pretrained`` flags (set to
    ``False``; a checkpoint path in ``model.pretrained`` becomes ``None``),
    ``pretrained_file`` (removed) and ``init_cfg`` of type ``Pretrained``
    (set to ``None``).
    """

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            for key in list(node):
                value = node[key]
                if key == "pretrained":
                    node[key] = False if isinstance(value, bool) else None
                elif key == "pretrained_file":
                    del node[key]
                elif key == "init_cfg" and isinstance(value, dict) and value.get("type") == "Pretrained":
                    node[key] = None
                else:
                    strip(value)
        elif isinstance(node, list | tuple):
            for value in node:
                strip(value)
        return node

    return strip(copy.deepcopy(model_cfg))

"""mmseg registration of the plain-PyTorch :class:`~faceparse.networks.compact.CompactFaceNet`.

The whole network is the backbone (``backbone.net``) and returns the logits; the decode head
only hands them to mmseg's losses and resizing and has no parameters of its own. So the
segmentor counts exactly the network's parameters, and a checkpoint's ``state_dict`` becomes
the plain network's by dropping the ``backbone.net.`` prefix (:func:`plain_state_dict`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from mmengine.model import BaseModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import nn

from faceparse.networks.compact import CompactFaceNet

PREFIX = "backbone.net."


@MODELS.register_module()
class CompactFaceBackbone(BaseModule):
    """:class:`CompactFaceNet` as an mmseg backbone: returns ``(logits,)`` at the input's size.

    Args are CompactFaceNet's (``num_classes``, ``detail``, ``context``, ``decoder``).
    It initialises its own weights, so mmengine's ``init_cfg`` stays ``None``.
    """

    def __init__(self, **net_kwargs) -> None:
        super().__init__(init_cfg=None)
        self.net = CompactFaceNet(**net_kwargs)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.net(x),)


@MODELS.register_module()
class LogitsHead(BaseDecodeHead):
    """A decode head for a backbone that already returns logits: no layers, only mmseg's
    losses, resizing and prediction (``conv_seg`` is removed)."""

    def __init__(self, num_classes: int, **kwargs) -> None:
        kwargs.update(in_channels=num_classes, channels=num_classes, dropout_ratio=0.0, init_cfg=None)
        super().__init__(num_classes=num_classes, **kwargs)
        del self.conv_seg

    def forward(self, inputs) -> torch.Tensor:
        return self._transform_inputs(inputs)

    def loss_by_feat(self, seg_logits: torch.Tensor, batch_data_samples) -> dict:
        """mmseg's losses and ``acc_seg``, without its bilinear resize of logits that are already at
        the labels' size (an identity that still costs a copy forward and backward) and with the
        accuracy from ``max`` instead of mmseg's ``topk`` (the same value, a quarter of the time):
        together ~50 ms of a CPU training iteration in the demo (0.22 s with them saved). Other
        sizes, or a pixel sampler, go through mmseg's own path."""
        seg_label = self._stack_batch_gt(batch_data_samples)
        if seg_logits.shape[2:] != seg_label.shape[2:] or self.sampler is not None:
            return super().loss_by_feat(seg_logits, batch_data_samples)
        seg_label = seg_label.squeeze(1)
        losses_decode = self.loss_decode if isinstance(self.loss_decode, nn.ModuleList) else [self.loss_decode]
        loss = {}
        for loss_decode in losses_decode:  # terms of the same name add up, as in mmseg
            loss[loss_decode.loss_name] = loss.get(loss_decode.loss_name, 0) + loss_decode(
                seg_logits, seg_label, weight=None, ignore_index=self.ignore_index
            )
        with torch.no_grad():
            valid = seg_label != self.ignore_index
            hits = (seg_logits.max(1).indices == seg_label)[valid]
            loss["acc_seg"] = hits.float().mean() * 100 if hits.numel() else seg_logits.new_zeros(())
        return loss


def plain_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The CompactFaceNet weights of an mmseg checkpoint's ``state_dict``, keyed as the plain
    network names them; raises ValueError if the checkpoint holds anything else."""
    others = [k for k in state_dict if not k.startswith(PREFIX)]
    if others:
        raise ValueError(
            f"not a CompactFaceNet checkpoint: {len(others)} weights outside {PREFIX!r}, e.g. {others[0]!r}"
        )
    return {k[len(PREFIX) :]: v for k, v in state_dict.items()}

"""Losses: class-weighted cross-entropy that survives ignored (255) pixels."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmseg.models.losses import CrossEntropyLoss
from mmseg.models.losses.utils import weight_reduce_loss
from mmseg.registry import MODELS


def weighted_cross_entropy(pred: torch.Tensor, label: torch.Tensor, weight: torch.Tensor | None = None,
                           class_weight: torch.Tensor | None = None, reduction: str = "mean",
                           avg_factor: float | None = None, ignore_index: int = -100,
                           **kwargs) -> torch.Tensor:  # noqa: ARG001 - the criterion signature
    """Softmax cross-entropy, averaged over the class weights of the pixels that are not ignored.

    mmsegmentation 1.2.2's ``cross_entropy`` computes the same average factor as
    ``class_weight[label]`` summed over every pixel, the ignored ones included, and
    so fails with an IndexError as soon as a label holds ``ignore_index`` (255,
    which RandomRotate and padding put into masks). Here ignored pixels weigh 0;
    on labels without them the value is mmseg's. The factor is summed in float32,
    so half-precision logits cannot overflow it.
    """
    loss = F.cross_entropy(pred, label, weight=class_weight, reduction="none", ignore_index=ignore_index)
    if avg_factor is None and reduction == "mean":
        valid = label != ignore_index
        if class_weight is None:
            avg_factor = valid.sum()
        else:
            per_pixel = class_weight.float()[label.masked_fill(~valid, 0)]
            avg_factor = (per_pixel * valid).sum()
    if weight is not None:
        weight = weight.float()
    return weight_reduce_loss(loss, weight=weight, reduction=reduction, avg_factor=avg_factor)


@MODELS.register_module()
class ClassWeightedCrossEntropyLoss(CrossEntropyLoss):
    """mmseg's softmax ``CrossEntropyLoss`` (same arguments, same value on labels without
    ignored pixels) whose mean skips ignored pixels instead of indexing the class
    weights with them: see :func:`weighted_cross_entropy`."""

    def __init__(self, class_weight: list[float] | str | None = None, loss_weight: float = 1.0,
                 reduction: str = "mean", loss_name: str = "loss_ce") -> None:
        super().__init__(use_sigmoid=False, use_mask=False, reduction=reduction, class_weight=class_weight,
                         loss_weight=loss_weight, loss_name=loss_name, avg_non_ignore=True)
        self.cls_criterion = weighted_cross_entropy

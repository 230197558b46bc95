"""Losses: class-weighted cross-entropy that survives ignored (255) pixels, and a Dice loss that
weighs every class present the same (a differentiable mean F1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmseg.models.losses import CrossEntropyLoss
from mmseg.models.losses.utils import weight_reduce_loss
from mmseg.registry import MODELS


def weighted_cross_entropy(
    pred: torch.Tensor,
    label: torch.Tensor,
    weight: torch.Tensor | None = None,
    class_weight: torch.Tensor | None = None,
    reduction: str = "mean",
    avg_factor: float | None = None,
    ignore_index: int = -100,
    **kwargs,
) -> torch.Tensor:  # noqa: ARG001 - the criterion signature
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

    def __init__(
        self,
        class_weight: list[float] | str | None = None,
        loss_weight: float = 1.0,
        reduction: str = "mean",
        loss_name: str = "loss_ce",
    ) -> None:
        super().__init__(
            use_sigmoid=False,
            use_mask=False,
            reduction=reduction,
            class_weight=class_weight,
            loss_weight=loss_weight,
            loss_name=loss_name,
            avg_non_ignore=True,
        )
        self.cls_criterion = weighted_cross_entropy


@MODELS.register_module()
class ClassMeanDiceLoss(torch.nn.Module):
    """1 - the mean soft Dice (F1) over the classes present in the batch's labels.

    Each class's Dice is taken over all the batch's pixels (not per image), like the later
    editions' dataset-level F-score, and every present class counts the same however few its
    pixels: the thin classes (brows, earrings, necklace) weigh as much as the skin. Ignored
    (255) pixels count neither in the prediction nor in the truth. mmseg's ``DiceLoss`` instead
    pools all classes into one Dice per image, which the large classes dominate.
    """

    def __init__(
        self, loss_weight: float = 1.0, ignore_index: int = 255, eps: float = 1.0, loss_name: str = "loss_dice"
    ) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self.eps = eps
        self._loss_name = loss_name

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        ignore_index: int | None = None,
        **kwargs,
    ) -> torch.Tensor:  # noqa: ARG002
        ignore = self.ignore_index if ignore_index is None else ignore_index
        num_classes = pred.shape[1]
        valid = target != ignore
        label = target.masked_fill(~valid, 0)
        probs = pred.float().softmax(1) * valid.unsqueeze(1)
        # per class: the probability mass on its own pixels, all its predicted mass, its pixel count;
        # gathered and counted by label rather than through a one-hot copy of the batch
        overlap = torch.zeros(num_classes, device=pred.device).index_add_(
            0, label[valid], probs.gather(1, label.unsqueeze(1)).squeeze(1)[valid]
        )
        predicted = probs.sum((0, 2, 3))
        actual = torch.bincount(label[valid], minlength=num_classes).float()
        dice = (2 * overlap + self.eps) / (predicted + actual + self.eps)
        present = actual > 0
        if not present.any():  # every pixel ignored: nothing to learn from, but keep the graph
            return pred.sum() * 0.0
        return self.loss_weight * (1 - dice[present].mean())

    @property
    def loss_name(self) -> str:
        return self._loss_name

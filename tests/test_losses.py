"""ClassWeightedCrossEntropyLoss: mmseg's value without ignored pixels, no IndexError with them.
ClassMeanDiceLoss: 1 - the mean soft Dice of the classes present, ignored pixels left out."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import faceparse.mm  # noqa: F401  registers the loss

CLASS_WEIGHT = [0.95, 0.95, 0.95, 1, 1, 1, 1.05, 1.05, 1.05, 1.05, 1, 1, 1, 0.95, 1.05, 1.5, 2, 1, 1.05]


def _batch(seed: int = 0, ignored: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 19, 24, 24, generator=g, requires_grad=True)
    labels = torch.randint(0, 19, (2, 24, 24), generator=g)
    if ignored:
        labels[:, :5] = 255  # RandomRotate's / the padding's ignore value
        labels[1, :, -3:] = 255
    return logits, labels


def _losses(**kwargs):
    from mmseg.models.losses import CrossEntropyLoss
    from mmseg.registry import MODELS

    ours = MODELS.build(dict(type="ClassWeightedCrossEntropyLoss", **kwargs))
    return ours, CrossEntropyLoss(**kwargs)


@pytest.mark.parametrize("class_weight", [CLASS_WEIGHT, None], ids=["class_weight", "unweighted"])
@pytest.mark.parametrize("loss_weight", [1.0, 0.4])
def test_same_value_as_mmseg_without_ignored_pixels(class_weight, loss_weight):
    ours, mmseg = _losses(class_weight=class_weight, loss_weight=loss_weight)
    logits, labels = _batch()
    want = mmseg(logits, labels, ignore_index=255)
    got = ours(logits, labels, ignore_index=255)
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    assert ours.loss_name == "loss_ce"


def test_ignored_pixels_are_left_out_of_the_mean():
    ours, mmseg = _losses(class_weight=CLASS_WEIGHT)
    logits, labels = _batch(ignored=True)
    with pytest.raises(IndexError):  # the mmseg 1.2.2 bug this loss exists for
        mmseg(logits, labels, ignore_index=255)
    got = ours(logits, labels, ignore_index=255)
    # torch's weighted mean: sum(w[y] * nll) / sum(w[y]) over the pixels not ignored
    want = F.cross_entropy(logits, labels, weight=torch.tensor(CLASS_WEIGHT), ignore_index=255)
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    got.backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad.permute(0, 2, 3, 1)[labels == 255].abs().max() == 0  # no gradient from ignored pixels


def test_all_pixels_ignored_gives_zero():
    ours, _ = _losses(class_weight=CLASS_WEIGHT)
    logits, labels = _batch()
    assert ours(logits, torch.full_like(labels, 255), ignore_index=255).item() == 0.0


def _dice_loss(**kwargs):
    from mmseg.registry import MODELS

    return MODELS.build(dict(type="ClassMeanDiceLoss", **kwargs))


def _reference_dice_loss(logits: torch.Tensor, labels: torch.Tensor, eps: float = 1.0) -> float:
    """The definition, in numpy, pixel by pixel: soft Dice per class over the batch's pixels
    that are not ignored, averaged over the classes present in those labels."""
    probs = logits.detach().softmax(1).permute(0, 2, 3, 1).reshape(-1, 19).numpy().astype(np.float64)
    flat = labels.reshape(-1).numpy()
    probs, flat = probs[flat != 255], flat[flat != 255]
    dices = []
    for c in np.unique(flat):
        truth = (flat == c).astype(np.float64)
        dices.append((2 * (probs[:, c] * truth).sum() + eps) / (probs[:, c].sum() + truth.sum() + eps))
    return 1 - float(np.mean(dices))


@pytest.mark.parametrize("ignored", [False, True])
def test_dice_is_one_minus_the_mean_soft_dice_of_the_present_classes(ignored):
    loss = _dice_loss(loss_weight=1.0)
    logits, labels = _batch(seed=3, ignored=ignored)
    labels[labels == 7] = 2  # class 7 absent: it must not count
    got = loss(logits, labels, ignore_index=255)
    assert got.item() == pytest.approx(_reference_dice_loss(logits, labels), rel=1e-5)
    assert _dice_loss(loss_weight=0.5)(logits, labels).item() == pytest.approx(got.item() / 2, rel=1e-6)
    assert loss.loss_name == "loss_dice"


def test_dice_weighs_a_rare_class_like_a_frequent_one():
    """One pixel of a class mislabelled costs as much as a whole mislabelled large class would."""
    loss = _dice_loss()
    labels = torch.zeros(1, 16, 16, dtype=torch.long)
    labels[0, 0, 0] = 15  # one earring pixel
    perfect = F.one_hot(labels, 19).permute(0, 3, 1, 2).float() * 50
    assert loss(perfect, labels).item() == pytest.approx(0.0, abs=1e-4)
    missed = perfect.clone()
    missed[0, 15, 0, 0], missed[0, 0, 0, 0] = 0.0, 50.0  # the earring pixel called background
    # background keeps ~255/257 of its Dice, the earring class loses (almost) all of it
    assert loss(missed, labels).item() > 0.2
    assert F.cross_entropy(missed, labels).item() < 0.2


def test_dice_leaves_ignored_pixels_out():
    loss = _dice_loss()
    logits, labels = _batch(seed=4, ignored=True)
    got = loss(logits, labels, ignore_index=255)
    got.backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad.permute(0, 2, 3, 1)[labels == 255].abs().max() == 0
    # whatever the logits say at ignored pixels, the loss is the same
    other = logits.detach().clone()
    other.permute(0, 2, 3, 1)[labels == 255] = 30.0
    assert loss(other, labels).item() == pytest.approx(got.item(), rel=1e-6)


def test_dice_all_pixels_ignored_gives_zero():
    logits, labels = _batch()
    got = _dice_loss()(logits, torch.full_like(labels, 255))
    assert got.item() == 0.0
    got.backward()
    assert torch.isfinite(logits.grad).all()

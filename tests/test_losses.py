"""ClassWeightedCrossEntropyLoss: mmseg's value without ignored pixels, no IndexError with them."""
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


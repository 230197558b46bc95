"""A segmentor in the form that exports to ONNX and that parse runs with PyTorch.

:class:`ExportableSegmentor` takes ``(N, 3, H, W)`` float32 RGB 0..255 and returns logits at
the input's size, the model's normalisation inside; every ``AdaptiveAvgPool2d`` is replaced
by :class:`ShapeAgnosticAdaptiveAvgPool2d` (the same bins as averaging matrices computed
from the input's shape), which the TorchScript exporter can export with dynamic sizes.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from faceparse.mm.pipelines import normalisation

__all__ = ["ShapeAgnosticAdaptiveAvgPool2d", "ExportableSegmentor", "exportable"]


def _pool_matrix(n, out: int, like: torch.Tensor) -> torch.Tensor:
    """(out, n) averaging matrix of adaptive average pooling over a length-``n`` axis.

    Bin ``i`` covers ``[floor(i*n/out), ceil((i+1)*n/out))``, as in PyTorch's
    ``adaptive_avg_pool``. ``n`` may be a traced size: the matrix then follows
    the input's shape in the exported graph.
    """
    i = torch.arange(out, device=like.device)
    start = torch.div(i * n, out, rounding_mode="floor")
    end = torch.div((i + 1) * n + out - 1, out, rounding_mode="floor")
    j = torch.arange(n, device=like.device)
    member = ((j[None, :] >= start[:, None]) & (j[None, :] < end[:, None])).to(like.dtype)
    return member / member.sum(dim=1, keepdim=True)


class ShapeAgnosticAdaptiveAvgPool2d(torch.nn.Module):
    """``AdaptiveAvgPool2d`` as two matrix products whose matrices follow the input's shape."""

    def __init__(self, output_size):
        super().__init__()
        size = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
        if any(s is None for s in size):
            raise ValueError(
                f"AdaptiveAvgPool2d output size {output_size}: None (keep the input size) is not supported in an export"
            )
        self.out_h, self.out_w = int(size[0]), int(size[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = _pool_matrix(x.shape[2], self.out_h, x)
        cols = _pool_matrix(x.shape[3], self.out_w, x)
        return torch.matmul(torch.matmul(rows, x), cols.transpose(0, 1))


def _replace_adaptive_pools(module: torch.nn.Module) -> int:
    replaced = 0
    for name, child in module.named_children():
        if isinstance(child, torch.nn.AdaptiveAvgPool2d):
            setattr(module, name, ShapeAgnosticAdaptiveAvgPool2d(child.output_size))
            replaced += 1
        else:
            replaced += _replace_adaptive_pools(child)
    return replaced


class ExportableSegmentor(torch.nn.Module):
    """An mmseg ``EncoderDecoder`` as ``RGB 0..255 image -> logits at the input's size``.

    The same computation as the segmentor's ``test_step`` in ``whole`` mode
    (normalise, backbone, neck, decode head, bilinear resize to the input),
    without the data samples, so that it can be traced.
    """

    def __init__(self, segmentor, mean: Sequence[float], std: Sequence[float], model_wants_bgr: bool):
        super().__init__()
        self.segmentor = copy.deepcopy(segmentor).eval()
        self.pools_replaced = _replace_adaptive_pools(self.segmentor)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.model_wants_bgr = model_wants_bgr
        self.align_corners = bool(self.segmentor.decode_head.align_corners)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.flip(1) if self.model_wants_bgr else image
        x = (x - self.mean) / self.std
        logits = self.segmentor.decode_head(self.segmentor.extract_feat(x))
        return F.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=self.align_corners)


def exportable(model, cfg) -> ExportableSegmentor:
    """The exportable form of a loaded segmentor (see :func:`faceparse.predict.models.load_model`)."""
    mode = (cfg.model.get("test_cfg") or {}).get("mode", "whole")
    if mode != "whole":
        raise ValueError(f"config: test_cfg.mode={mode!r}; only 'whole' inference can be exported")
    norm = normalisation(cfg)
    return ExportableSegmentor(model, norm["mean"], norm["std"], norm["model_channel_order"] == "BGR").cpu().eval()

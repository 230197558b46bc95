"""CompactFaceNet: a face parser under the later editions' 1,821,085-parameter budget.

This file imports nothing but torch, so a solution folder carries it unchanged
(faceparse registers it in mmseg in :mod:`faceparse.mm.compact`; the graders' ``run.py``
imports it directly). Two paths meet at 1/4 of the input size:

- a **detail path** of three strided convolutions (1/2, 1/4, 1/8) that keeps the thin parts
  (brows, eyes, lips, earrings, necklace) sharp;
- a **context path** of inverted residual blocks (1/16, 1/32) under a light pyramid pooling
  module, which sees the whole head (which side an eye is on, where hair ends and the hat begins).

The context is fused into the detail path at 1/8, then at 1/4, and a 1x1 classifier gives the
logits at 1/4 of the input size; :meth:`CompactFaceNet.segment` upsamples them to the input.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNReLU(nn.Sequential):
    """Convolution (no bias), batch norm, ReLU (``relu=False``: linear)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1,
                 relu: bool = True) -> None:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                                   nn.BatchNorm2d(cout)]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 then pointwise 1x1, each with batch norm and ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(ConvBNReLU(cin, cin, 3, stride, groups=cin), ConvBNReLU(cin, cout, 1))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: expand 1x1, depthwise 3x3, linear project 1x1; a skip when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int = 1, expand: int = 6) -> None:
        super().__init__()
        hidden = cin * expand
        self.block = nn.Sequential(ConvBNReLU(cin, hidden, 1), ConvBNReLU(hidden, hidden, 3, stride, groups=hidden),
                                   ConvBNReLU(hidden, cout, 1, relu=False))
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.skip else y


class PyramidPooling(nn.Module):
    """Context pooled at a few scales - the whole map, and average pools of ``kernels`` - each
    reduced to ``channels // 4`` channels, upsampled back and concatenated with the input.
    Fixed kernels (not PSPNet's fixed output grids) keep the network exportable to ONNX for any
    input size."""

    def __init__(self, channels: int, kernels: tuple[int, ...] = (4, 2)) -> None:
        super().__init__()
        branch = channels // 4
        self.kernels = kernels
        self.branches = nn.ModuleList(ConvBNReLU(channels, branch, 1) for _ in range(1 + len(kernels)))
        self.project = ConvBNReLU(channels + branch * (1 + len(kernels)), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        pooled = [x.mean((2, 3), keepdim=True)] + [F.avg_pool2d(x, k, k, ceil_mode=True, count_include_pad=False)
                                                  for k in self.kernels]
        ups = [F.interpolate(conv(p), size, mode="bilinear", align_corners=False)
               for p, conv in zip(pooled, self.branches)]
        return self.project(torch.cat([x, *ups], dim=1))


def _stage(cin: int, cout: int, blocks: int, stride: int) -> nn.Sequential:
    return nn.Sequential(InvertedResidual(cin, cout, stride), *(InvertedResidual(cout, cout) for _ in range(blocks - 1)))


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, like.shape[2:], mode="bilinear", align_corners=False)


class CompactFaceNet(nn.Module):
    """Detail path + context path, fused at 1/8 and 1/4; logits at 1/4 of the input.

    Args:
        num_classes: output classes (19 for CelebAMask-HQ).
        detail: channels at 1/2, 1/4 and 1/8.
        context: channels of the three context stages (1/16, 1/32, 1/32).
        blocks: inverted residual blocks per context stage.
        decoder: channels of the fused features at 1/4 (the classifier's input).
    """

    def __init__(self, num_classes: int = 19, detail: tuple[int, int, int] = (32, 48, 64),
                 context: tuple[int, int, int] = (64, 96, 128), blocks: tuple[int, int, int] = (3, 3, 3),
                 decoder: int = 64) -> None:
        super().__init__()
        d2, d4, d8 = detail
        c16, c32, cout = context
        self.stem = ConvBNReLU(3, d2, 3, 2)
        self.down4 = SeparableConv(d2, d4, 2)
        self.down8 = SeparableConv(d4, d8, 2)
        self.context = nn.Sequential(_stage(d8, c16, blocks[0], 2), _stage(c16, c32, blocks[1], 2),
                                     _stage(c32, cout, blocks[2], 1), PyramidPooling(cout))
        fused8 = (cout + decoder) // 2
        self.context8 = nn.Sequential(ConvBNReLU(cout, cout, 3, groups=cout), ConvBNReLU(cout, fused8, 1, relu=False))
        self.detail8 = ConvBNReLU(d8, fused8, 1, relu=False)
        self.context4 = ConvBNReLU(fused8, decoder, 1, relu=False)
        self.detail4 = ConvBNReLU(d4, decoder, 1, relu=False)
        self.refine = SeparableConv(decoder, decoder)
        self.classifier = nn.Conv2d(decoder, num_classes, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at 1/4 of the input's height and width (rounded up)."""
        x4 = self.down4(self.stem(x))
        x8 = self.down8(x4)
        ctx = self.context(x8)
        f8 = F.relu(self.detail8(x8) + _up(self.context8(ctx), x8))
        f4 = F.relu(self.detail4(x4) + _up(self.context4(f8), x4))
        return self.classifier(self.refine(f4))

    def segment(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at the input's own size (bilinear, as mmseg resizes them)."""
        return F.interpolate(self.forward(x), x.shape[2:], mode="bilinear", align_corners=False)

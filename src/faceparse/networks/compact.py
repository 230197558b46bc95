"""CompactFaceNet: a face parser under the later editions' 1,821,085-parameter budget.

This file imports nothing but torch, so a solution folder carries it unchanged
(faceparse registers it in mmseg in :mod:`faceparse.mm.compact`; the graders' ``run.py``
imports it directly). A U-shaped network of plain 3x3 convolutions:

- a **detail path** (1/2, 1/4, 1/8) that keeps the thin parts (brows, eyes, lips, earrings,
  necklace) sharp;
- a **context path** (1/16, 1/32) under a light pyramid pooling module, which sees the whole
  head (which side an eye is on, where hair ends and the hat begins);
- a **decoder** that climbs back to 1/2, concatenating the path's features at each scale;
- a **sub-pixel classifier**: a 1x1 convolution at 1/2 gives each class four logits per
  position, one per pixel of the 2x2 block it covers (pixel shuffle), so the logits come at the
  input's full size for the cost of a classifier at 1/2. Bilinearly upsampled logits at 1/2 cap
  the val mIoU at 97.2 (``bench/bench_label_resolution.py``), mostly on the thin classes.

That is the demo's network, sized for 2 CPU cores. With the budget's remaining parameters spent
where the maps are large (``configs/compact_large.py``: a convolution and a last decoder stage at
full size, wider and deeper decoding at 1/2 and 1/4; 4.3x the FLOPs) the same file matches mmseg's
small UNet at equal iterations with 0.77x its FLOPs (``bench/bench_compact.py``); that is the
network for a GPU (``configs/compact_512.py``).

Why plain 3x3 convolutions and not inverted residuals: the first CompactFaceNet (inverted
residuals, separable convolutions, logits at 1/4) reached 71.9 val mIoU in the demo's 1600
iterations where plain convolutions at the same widths reach 79.2 (``bench/bench_compact.py``),
and on the CPU plain convolutions are faster too (depthwise convolutions' backward pass is slow
there). The widths are small where the maps are large (16 channels at 1/2) and the parameters sit
where the maps are small (1/16, 1/32), so the cost per iteration stays that of a much smaller
network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNReLU(nn.Sequential):
    """Convolution (no bias), batch norm, ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
        )


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
        pooled = [x.mean((2, 3), keepdim=True)] + [
            F.avg_pool2d(x, k, k, ceil_mode=True, count_include_pad=False) for k in self.kernels
        ]
        ups = [
            F.interpolate(conv(p), size, mode="bilinear", align_corners=False) for p, conv in zip(pooled, self.branches)
        ]
        return self.project(torch.cat([x, *ups], dim=1))


def _convs(channels: int, n: int) -> list[ConvBNReLU]:
    return [ConvBNReLU(channels, channels) for _ in range(n)]


def _stem(width: int, full_res: int, convs: int) -> nn.Module:
    """To 1/2: a strided 3x3 convolution, after one at full size (``full_res`` channels, if any) and
    before ``convs - 1`` more at 1/2. The plain strided one is a bare ConvBNReLU (the keys of the
    demo's network)."""
    if not full_res and convs == 1:
        return ConvBNReLU(3, width, 3, 2)
    first = [ConvBNReLU(3, full_res), ConvBNReLU(full_res, width, 3, 2)] if full_res else [ConvBNReLU(3, width, 3, 2)]
    return nn.Sequential(*first, *_convs(width, convs - 1))


def _stage(cin: int, cout: int, n: int) -> nn.Module:
    """A decoder stage: ``n`` 3x3 convolutions (one is a bare ConvBNReLU: the demo network's keys)."""
    return ConvBNReLU(cin, cout) if n == 1 else nn.Sequential(ConvBNReLU(cin, cout), *_convs(cout, n - 1))


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, like.shape[2:], mode="bilinear", align_corners=False)


class CompactFaceNet(nn.Module):
    """Detail path (1/2-1/8), context path (1/16, 1/32) + pyramid pooling, decoder to 1/2, then
    either the sub-pixel classifier (the defaults: the demo's network for 2 CPU cores) or a
    decoder stage at full size (``full_res_decoder``: configs/compact_large.py, for a GPU).

    Args:
        num_classes: output classes (19 for CelebAMask-HQ).
        detail: channels at 1/2, 1/4 and 1/8 (one strided 3x3 convolution at 1/2, two at 1/4
            and 1/8).
        context: channels at 1/16 and 1/32 (two 3x3 convolutions each).
        decoder: channels of the decoder at 1/16, 1/8, 1/4 and 1/2.
        decoder_convs: 3x3 convolutions of each of those decoder stages.
        full_res: channels of a 3x3 convolution at the input's full size before the strided one
            (0: none).
        stem_convs: 3x3 convolutions at 1/2 in the stem, the strided one included.
        full_res_decoder: a last decoder stage at full size (``full_res`` channels, reading the
            full-size convolution's features) and a plain 1x1 classifier there, instead of the
            sub-pixel classifier at 1/2.
    """

    def __init__(
        self,
        num_classes: int = 19,
        detail: tuple[int, int, int] = (16, 48, 64),
        context: tuple[int, int] = (128, 192),
        decoder: tuple[int, int, int, int] = (96, 48, 16, 16),
        decoder_convs: tuple[int, int, int, int] = (1, 1, 1, 1),
        full_res: int = 0,
        stem_convs: int = 1,
        full_res_decoder: bool = False,
    ) -> None:
        super().__init__()
        d2, d4, d8 = detail
        c16, c32 = context
        u16, u8, u4, u2 = decoder
        self.num_classes = num_classes
        if full_res_decoder and not full_res:
            raise ValueError("full_res_decoder needs full_res channels (the full-size features it reads)")
        self.stem = _stem(d2, full_res, stem_convs)
        self.down4 = nn.Sequential(ConvBNReLU(d2, d4, 3, 2), ConvBNReLU(d4, d4))
        self.down8 = nn.Sequential(ConvBNReLU(d4, d8, 3, 2), ConvBNReLU(d8, d8))
        self.down16 = nn.Sequential(ConvBNReLU(d8, c16, 3, 2), ConvBNReLU(c16, c16))
        self.down32 = nn.Sequential(ConvBNReLU(c16, c32, 3, 2), ConvBNReLU(c32, c32), PyramidPooling(c32))
        n16, n8, n4, n2 = decoder_convs
        self.up16 = _stage(c32 + c16, u16, n16)
        self.up8 = _stage(u16 + d8, u8, n8)
        self.up4 = _stage(u8 + d4, u4, n4)
        self.up2 = _stage(u4 + d2, u2, n2)
        self.up1 = ConvBNReLU(u2 + full_res, full_res) if full_res_decoder else None
        self.classifier = (
            nn.Conv2d(full_res, num_classes, 1) if full_res_decoder else nn.Conv2d(u2, num_classes * 4, 1)
        )  # 4 = the 2x2 pixels of a position at 1/2
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
        # the four sub-pixels of a class start equal (ICNR): the first output is a nearest-neighbour
        # upsampling, free of the checkerboard a random sub-pixel start leaves
        if self.up1 is None:
            with torch.no_grad():
                weight = self.classifier.weight.view(self.num_classes, 4, -1, 1, 1)
                weight.copy_(weight[:, :1].expand_as(weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at twice the size of the 1/2 maps (the input's size when it is even, one row or
        column more where it is odd); with ``full_res_decoder``, at the input's size."""
        if self.up1 is None:
            x2 = self.stem(x)
        else:  # the full-size convolution's features also feed the last decoder stage
            x1 = self.stem[0](x)
            x2 = self.stem[1:](x1)
        x4 = self.down4(x2)
        x8 = self.down8(x4)
        x16 = self.down16(x8)
        y = self.up16(torch.cat([_up(self.down32(x16), x16), x16], dim=1))
        y = self.up8(torch.cat([_up(y, x8), x8], dim=1))
        y = self.up4(torch.cat([_up(y, x4), x4], dim=1))
        y = self.up2(torch.cat([_up(y, x2), x2], dim=1))
        if self.up1 is None:
            return F.pixel_shuffle(self.classifier(y), 2)
        return self.classifier(self.up1(torch.cat([_up(y, x1), x1], dim=1)))

    def segment(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at the input's own size (an odd size's extra row or column cut off)."""
        return self.forward(x)[..., : x.shape[2], : x.shape[3]]

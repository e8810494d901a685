"""Small UNet.

Exercises: double-conv blocks (Conv-BN-ReLU x2), max-pool downsampling, upsampling by
F.interpolate(scale_factor=2, mode="bilinear", align_corners=False) on some levels and
nn.ConvTranspose2d on others, skip connections via torch.cat([skip, up], dim=1),
a final 1x1 conv producing per-pixel logits (same spatial size as the input).
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class DoubleConv(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, mid_ch: int | None = None):
        mid_ch = mid_ch or out_ch
        super().__init__(
            nn.Conv2d(in_ch, mid_ch, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_ch, out_ch, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class Down(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.conv = DoubleConv(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


class Up(nn.Module):
    """Upsample `x` by 2 (bilinear interpolate or transposed conv), concat with the skip, DoubleConv."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int, bilinear: bool):
        super().__init__()
        self.bilinear = bilinear
        if bilinear:
            self.up = None
            up_ch = in_ch
        else:
            self.up = nn.ConvTranspose2d(in_ch, in_ch // 2, kernel_size=2, stride=2)
            up_ch = in_ch // 2
        self.conv = DoubleConv(skip_ch + up_ch, out_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.bilinear:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        else:
            x = self.up(x)
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    def __init__(self, in_chans: int = 3, num_classes: int = 2, base: int = 8, levels: int = 3,
                 bilinear_levels: tuple[int, ...] | None = None):
        """`levels` down/up steps; decoder level i (0 = deepest) uses bilinear upsampling if i is in
        `bilinear_levels` (default: the odd ones), otherwise ConvTranspose2d."""
        super().__init__()
        if bilinear_levels is None:
            bilinear_levels = tuple(range(1, levels, 2))
        chans = [base * 2 ** i for i in range(levels + 1)]
        self.inc = DoubleConv(in_chans, chans[0])
        self.downs = nn.ModuleList([Down(chans[i], chans[i + 1]) for i in range(levels)])
        ups = []
        for i in range(levels):
            in_ch, skip_ch = chans[levels - i], chans[levels - i - 1]
            ups.append(Up(in_ch, skip_ch, skip_ch, bilinear=i in bilinear_levels))
        self.ups = nn.ModuleList(ups)
        self.outc = nn.Conv2d(chans[0], num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inc(x)
        skips = [x]
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()  # the bottleneck output is not a skip
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)


def unet(in_chans: int = 3, num_classes: int = 2, base: int = 8, levels: int = 3,
         bilinear_levels: tuple[int, ...] | None = None) -> UNet:
    return UNet(in_chans=in_chans, num_classes=num_classes, base=base, levels=levels, bilinear_levels=bilinear_levels)

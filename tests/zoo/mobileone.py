"""MobileOne-style depthwise/pointwise network in its TRAINING (multi-branch) form (Vasu et al.,
"MobileOne: An Improved One millisecond Mobile Backbone", CVPR 2023).

A MobileOne block sums, on one input: k over-parameterized conv+BN branches, a 1x1 "scale"
conv+BN branch (when the kernel is larger than 1x1) and an identity BN (when stride 1 and
in == out channels), then applies ReLU. Each stage alternates a depthwise 3x3 block
(groups == channels) and a pointwise 1x1 block.
"""
from __future__ import annotations

import torch
from torch import nn


def conv_bn(in_ch: int, out_ch: int, k: int, stride: int, padding: int, groups: int) -> nn.Sequential:
    seq = nn.Sequential()
    seq.add_module("conv", nn.Conv2d(in_ch, out_ch, k, stride, padding, groups=groups, bias=False))
    seq.add_module("bn", nn.BatchNorm2d(out_ch))
    return seq


class MobileOneBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, k: int, stride: int = 1, groups: int = 1, branches: int = 2):
        super().__init__()
        self.rbr_skip = nn.BatchNorm2d(in_ch) if in_ch == out_ch and stride == 1 else None
        self.rbr_conv = nn.ModuleList([conv_bn(in_ch, out_ch, k, stride, k // 2, groups) for _ in range(branches)])
        self.rbr_scale = conv_bn(in_ch, out_ch, 1, stride, 0, groups) if k > 1 else None
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = 0
        if self.rbr_skip is not None:
            out = self.rbr_skip(x)
        if self.rbr_scale is not None:
            out = out + self.rbr_scale(x)
        for branch in self.rbr_conv:
            out = out + branch(x)
        return self.act(out)


class MobileOne(nn.Module):
    def __init__(self, widths=(16, 32, 64), depths=(1, 2, 1), branches: int = 2, num_classes: int = 10,
                 in_chans: int = 3):
        super().__init__()
        self.stage0 = MobileOneBlock(in_chans, widths[0], 3, 2, branches=1)
        layers, in_ch = [], widths[0]
        for width, depth in zip(widths, depths):
            for i in range(depth):
                stride = 2 if i == 0 else 1
                layers.append(MobileOneBlock(in_ch, in_ch, 3, stride, groups=in_ch, branches=branches))  # dw
                layers.append(MobileOneBlock(in_ch, width, 1, 1, branches=branches))                      # pw
                in_ch = width
        self.stages = nn.Sequential(*layers)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(in_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gap(self.stages(self.stage0(x)))
        return self.linear(x.flatten(1))


def mobileone(widths=(16, 32, 64), depths=(1, 2, 1), branches: int = 2, num_classes: int = 10,
              in_chans: int = 3) -> MobileOne:
    return MobileOne(widths=widths, depths=depths, branches=branches, num_classes=num_classes, in_chans=in_chans)

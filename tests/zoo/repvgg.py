"""RepVGG-style network in its TRAINING (multi-branch) form.

Each block sums a 3x3 conv+BN branch, a 1x1 conv+BN branch and (when stride 1 and
in == out channels) an identity BN branch, then applies ReLU. Exercises parallel
branches feeding one add (a target for branch-fusion / re-parameterization passes).
"""
from __future__ import annotations

import torch
from torch import nn


def conv_bn(in_ch: int, out_ch: int, kernel_size: int, stride: int, padding: int, groups: int = 1) -> nn.Sequential:
    seq = nn.Sequential()
    seq.add_module("conv", nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, groups=groups, bias=False))
    seq.add_module("bn", nn.BatchNorm2d(out_ch))
    return seq


class RepVGGBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.rbr_identity = nn.BatchNorm2d(in_ch) if (in_ch == out_ch and stride == 1) else None
        self.rbr_dense = conv_bn(in_ch, out_ch, 3, stride, 1, groups)
        self.rbr_1x1 = conv_bn(in_ch, out_ch, 1, stride, 0, groups)
        self.nonlinearity = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        id_out = 0 if self.rbr_identity is None else self.rbr_identity(x)
        return self.nonlinearity(self.rbr_dense(x) + self.rbr_1x1(x) + id_out)


class RepVGG(nn.Module):
    def __init__(self, widths=(16, 32, 64, 128), depths=(1, 2, 2, 1), num_classes: int = 10,
                 stem_width: int | None = None, in_chans: int = 3):
        super().__init__()
        assert len(widths) == len(depths)
        stem_width = stem_width or widths[0]
        self.stage0 = RepVGGBlock(in_chans, stem_width, stride=2)
        stages = []
        in_ch = stem_width
        for width, depth in zip(widths, depths):
            blocks = []
            for i in range(depth):
                blocks.append(RepVGGBlock(in_ch, width, stride=2 if i == 0 else 1))
                in_ch = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(in_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stage0(x)
        for stage in self.stages:
            out = stage(out)
        out = self.gap(out)
        out = out.view(out.size(0), -1)
        return self.linear(out)


def repvgg(widths=(16, 32, 64, 128), depths=(1, 2, 2, 1), num_classes: int = 10, in_chans: int = 3) -> RepVGG:
    return RepVGG(widths=widths, depths=depths, num_classes=num_classes, in_chans=in_chans)

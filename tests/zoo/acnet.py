"""ACNet-style network in its TRAINING (multi-branch) form (Ding et al., "ACNet: Strengthening
the Kernel Skeletons", ICCV 2019).

Each Asymmetric Convolution Block sums a kxk conv+BN, a 1xk conv+BN (padding (0, k//2)) and a
kx1 conv+BN (padding (k//2, 0)) on the same input, then applies ReLU. The net mixes stride 1 and
stride 2 blocks, a grouped block and a depthwise block, so branch fusion must honour groups and
strides, and ends in global average pooling and a linear classifier.
"""
from __future__ import annotations

import torch
from torch import nn


def conv_bn(in_ch: int, out_ch: int, k: tuple[int, int], stride: int, padding: tuple[int, int],
            groups: int) -> nn.Sequential:
    seq = nn.Sequential()
    seq.add_module("conv", nn.Conv2d(in_ch, out_ch, k, stride, padding, groups=groups, bias=False))
    seq.add_module("bn", nn.BatchNorm2d(out_ch))
    return seq


class ACBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, k: int = 3, stride: int = 1, groups: int = 1):
        super().__init__()
        p = k // 2
        self.square = conv_bn(in_ch, out_ch, (k, k), stride, (p, p), groups)
        self.ver = conv_bn(in_ch, out_ch, (k, 1), stride, (p, 0), groups)
        self.hor = conv_bn(in_ch, out_ch, (1, k), stride, (0, p), groups)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.square(x) + self.ver(x) + self.hor(x))


class ACNet(nn.Module):
    def __init__(self, width: int = 16, num_classes: int = 10, in_chans: int = 3):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            ACBlock(in_chans, w, 3, 1),
            ACBlock(w, 2 * w, 3, 2),
            ACBlock(2 * w, 2 * w, 3, 1, groups=2),           # grouped
            ACBlock(2 * w, 2 * w, 3, 1, groups=2 * w),       # depthwise
            ACBlock(2 * w, 4 * w, 5, 2),                     # 5x5 with 1x5 / 5x1, stride 2
            ACBlock(4 * w, 4 * w, 3, 1),
        )
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gap(self.features(x))
        return self.fc(x.flatten(1))


def acnet(width: int = 16, num_classes: int = 10, in_chans: int = 3) -> ACNet:
    return ACNet(width=width, num_classes=num_classes, in_chans=in_chans)

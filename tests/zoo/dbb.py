"""DBB-style ResNet-18 variant in its TRAINING (multi-branch) form (Ding et al., "Diverse Branch
Block", CVPR 2021).

Every kxk conv+BN of ResNet-18 (the 7x7 stem included) is a Diverse Branch Block summing four
branches on the same input:

* ``dbb_origin``: kxk conv + BN;
* ``dbb_1x1``: 1x1 conv (same stride) + BN;
* ``dbb_avg``: 1x1 conv -> BN -> kxk avg-pool (stride) -> BN;
* ``dbb_1x1_kxk``: identity-initialized 1x1 conv (weight = param + identity buffer, as in DBB's
  ``IdentityBasedConv1x1``) -> BN -> kxk conv (stride) -> BN.

DBB pads the 1x1 outputs with their BN's bias (``BNAndPadLayer``) so the sequential branches stay
exactly mergeable. Here that padding is written as ``padding=k//2`` on the 1x1 convs: the border
of a zero-padded input through a bias-free 1x1 conv is 0, which the BN after it turns into
exactly BNAndPad's pad value. The kxk avg-pool and conv then use no padding of their own.
Downsample shortcuts stay 1x1 conv + BN, as in ResNet.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn(in_ch: int, out_ch: int, k: int, stride: int = 1, padding: int = 0, groups: int = 1) -> nn.Sequential:
    seq = nn.Sequential()
    seq.add_module("conv", nn.Conv2d(in_ch, out_ch, k, stride, padding, groups=groups, bias=False))
    seq.add_module("bn", nn.BatchNorm2d(out_ch))
    return seq


class IdentityBasedConv1x1(nn.Module):
    """A 1x1 conv whose effective weight is a learned residual plus a fixed identity."""

    def __init__(self, channels: int, padding: int = 0, groups: int = 1):
        super().__init__()
        self.padding, self.groups = padding, groups
        self.weight = nn.Parameter(torch.randn(channels, channels // groups, 1, 1) * 0.1)
        eye = torch.zeros(channels, channels // groups, 1, 1)
        for i in range(channels):
            eye[i, i % (channels // groups), 0, 0] = 1.0
        self.register_buffer("id_tensor", eye)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight + self.id_tensor, None, 1, self.padding, 1, self.groups)


class DiverseBranchBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, k: int, stride: int = 1, groups: int = 1):
        super().__init__()
        p = k // 2
        self.dbb_origin = conv_bn(in_ch, out_ch, k, stride, p, groups)
        self.dbb_1x1 = conv_bn(in_ch, out_ch, 1, stride, 0, groups)
        self.dbb_avg = nn.Sequential()
        self.dbb_avg.add_module("conv", nn.Conv2d(in_ch, out_ch, 1, 1, p, groups=groups, bias=False))
        self.dbb_avg.add_module("bn", nn.BatchNorm2d(out_ch))
        self.dbb_avg.add_module("avg", nn.AvgPool2d(k, stride, 0))
        self.dbb_avg.add_module("avgbn", nn.BatchNorm2d(out_ch))
        self.dbb_1x1_kxk = nn.Sequential()
        self.dbb_1x1_kxk.add_module("idconv1", IdentityBasedConv1x1(in_ch, padding=p, groups=groups))
        self.dbb_1x1_kxk.add_module("bn1", nn.BatchNorm2d(in_ch))
        self.dbb_1x1_kxk.add_module("conv2", nn.Conv2d(in_ch, out_ch, k, stride, 0, groups=groups, bias=False))
        self.dbb_1x1_kxk.add_module("bn2", nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dbb_origin(x) + self.dbb_1x1(x) + self.dbb_avg(x) + self.dbb_1x1_kxk(x)


class DBBBasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = DiverseBranchBlock(inplanes, planes, 3, stride)
        self.conv2 = DiverseBranchBlock(planes, planes, 3, 1)
        self.relu = nn.ReLU()
        self.downsample = conv_bn(inplanes, planes, 1, stride) if stride != 1 or inplanes != planes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu(self.conv1(x)))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class DBBResNet(nn.Module):
    def __init__(self, layers=(2, 2, 2, 2), width: int = 64, num_classes: int = 1000, in_chans: int = 3):
        super().__init__()
        self.stem = DiverseBranchBlock(in_chans, width, 7, 2)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, inplanes = [], width
        for i, depth in enumerate(layers):
            planes = width * 2 ** i
            blocks = []
            for j in range(depth):
                blocks.append(DBBBasicBlock(inplanes, planes, 2 if (j == 0 and i > 0) else 1))
                inplanes = planes
            stages.append(nn.Sequential(*blocks))
        self.layers = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.stem(x)))
        x = self.layers(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def dbb_resnet18(width: int = 64, num_classes: int = 1000, in_chans: int = 3) -> DBBResNet:
    return DBBResNet((2, 2, 2, 2), width=width, num_classes=num_classes, in_chans=in_chans)

"""Small YOLOv8-style detector (ultralytics layout, without anchor decoding).

Exercises: Conv2d+BN+SiLU units, C2f (chunk(2, 1) + growing list of residual
bottlenecks + torch.cat), SPPF (MaxPool2d k5 s1 p2 applied 3x + cat), an FPN/PAN neck
with nn.Upsample(scale_factor=2, mode="nearest") + cat, and a decoupled detect head
whose per-level maps are view(B, no, -1)-flattened, concatenated, torch.split into
box/cls parts, DFL-decoded (view/transpose/softmax/1x1 conv) and sigmoid-ed.
"""
from __future__ import annotations

import torch
from torch import nn


class Conv(nn.Module):
    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, g: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c1: int, c2: int, shortcut: bool = True, e: float = 1.0):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 3)
        self.cv2 = Conv(c_, c2, 3)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class C2f(nn.Module):
    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, e: float = 0.5):
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # ultralytics writes `y = list(self.cv1(x).chunk(2, 1))`; torch.fx cannot iterate a
        # Proxy inside list(), so unpack the two chunks explicitly (same graph).
        a, b = self.cv1(x).chunk(2, 1)
        y = [a, b]
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c1: int, c2: int, k: int = 5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1)
        self.cv2 = Conv(c_ * 4, c2, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class DFL(nn.Module):
    """Distribution focal loss integral: softmax over reg_max bins, expectation via a fixed 1x1 conv."""

    def __init__(self, c1: int = 16):
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1)
        self.c1 = c1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape
        return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)


class Detect(nn.Module):
    def __init__(self, nc: int = 8, ch: tuple[int, ...] = (), reg_max: int = 16):
        super().__init__()
        self.nc, self.reg_max = nc, reg_max
        self.no = nc + 4 * reg_max
        c2, c3 = max(16, ch[0] // 4, 4 * reg_max), max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1)) for x in ch)
        self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for x in ch)
        self.dfl = DFL(reg_max)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        outs = [torch.cat((box(f), cls(f)), 1) for f, box, cls in zip(feats, self.cv2, self.cv3)]
        B = outs[0].shape[0]
        x = torch.cat([o.view(B, self.no, -1) for o in outs], 2)       # (B, no, anchors)
        box, cls = torch.split(x, [4 * self.reg_max, self.nc], dim=1)
        return torch.cat((self.dfl(box), cls.sigmoid()), 1)             # (B, 4 + nc, anchors)


class YOLO(nn.Module):
    def __init__(self, width: int = 16, nc: int = 8, n: int = 1, in_chans: int = 3):
        super().__init__()
        w = width
        self.stem = Conv(in_chans, w, 3, 2)                                        # /2
        self.stage2 = nn.Sequential(Conv(w, 2 * w, 3, 2), C2f(2 * w, 2 * w, n, True))        # /4
        self.stage3 = nn.Sequential(Conv(2 * w, 4 * w, 3, 2), C2f(4 * w, 4 * w, n, True))    # /8  -> P3
        self.stage4 = nn.Sequential(Conv(4 * w, 8 * w, 3, 2), C2f(8 * w, 8 * w, n, True))    # /16 -> P4
        self.stage5 = nn.Sequential(Conv(8 * w, 8 * w, 3, 2), C2f(8 * w, 8 * w, n, True), SPPF(8 * w, 8 * w))  # /32
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.td4 = C2f(16 * w, 4 * w, n)
        self.td3 = C2f(8 * w, 4 * w, n)
        self.down3 = Conv(4 * w, 4 * w, 3, 2)
        self.bu4 = C2f(8 * w, 8 * w, n)
        self.down4 = Conv(8 * w, 8 * w, 3, 2)
        self.bu5 = C2f(16 * w, 8 * w, n)
        self.detect = Detect(nc, (4 * w, 8 * w, 8 * w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p3 = self.stage3(self.stage2(self.stem(x)))
        p4 = self.stage4(p3)
        p5 = self.stage5(p4)
        t4 = self.td4(torch.cat([self.up(p5), p4], 1))
        o3 = self.td3(torch.cat([self.up(t4), p3], 1))
        o4 = self.bu4(torch.cat([self.down3(o3), t4], 1))
        o5 = self.bu5(torch.cat([self.down4(o4), p5], 1))
        return self.detect([o3, o4, o5])


def yolo(width: int = 16, nc: int = 8, n: int = 1, in_chans: int = 3) -> YOLO:
    return YOLO(width=width, nc=nc, n=n, in_chans=in_chans)

"""Merging kernels on one base into one kernel, exactly (float64).

    common_grid   one grid (size K, padding P, dilation D per dim) holding every kernel's taps:
                  D the gcd of the dilations, P the largest padding; refused when strides differ,
                  when taps fall between grid points, or when centres differ (same output size
                  by flooring, but other pixels)
    merge_sum     parallel branches: sum of weights and biases on the common grid, groups the gcd
    merge_stack   concatenated outputs: weights and biases stacked along output channels
    compose       second(first(x)) with first 1x1 (stride 1) or second 1x1 (no padding):
                  W = W2 . W1 per group, b = b2 + sum over taps of W2 b1
"""
from __future__ import annotations

import math
from dataclasses import replace
from functools import reduce

import torch

from passes.reparam.kernels import Kernel


def common_grid(kernels: list[Kernel]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | str:
    """(size, padding, dilation) of one kernel holding every kernel's taps, or why none exists."""
    if len({k.stride for k in kernels}) != 1:
        return "stride-mismatch"
    nd = len(kernels[0].stride)
    size, padding, dilation = [], [], []
    for d in range(nd):
        dil = reduce(math.gcd, [k.dilation[d] for k in kernels if k.size[d] > 1], 0) or 1
        spans = [k.taps(d) for k in kernels]
        lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
        if any((s[0] - lo) % dil for s in spans):
            return "dilation-mismatch"  # taps that fall between the merged kernel's taps
        if any(s[0] + s[1] != lo + hi for s in spans):
            return "misaligned-centers"
        size.append((hi - lo) // dil + 1)
        padding.append(-lo)
        dilation.append(dil)
    return tuple(size), tuple(padding), tuple(dilation)


def _aligned(kernels: list[Kernel], groups: int) -> list[Kernel] | str:
    grid = common_grid(kernels)
    if isinstance(grid, str):
        return grid
    return [k.regroup(groups).embed(*grid) for k in kernels]


def merge_sum(kernels: list[Kernel]) -> Kernel | str:
    """One kernel computing the sum of all kernels' outputs."""
    if len({k.in_channels for k in kernels}) != 1 or len({k.out_channels for k in kernels}) != 1:
        return "channel-mismatch"
    aligned = _aligned(kernels, reduce(math.gcd, (k.groups for k in kernels)))
    if isinstance(aligned, str):
        return aligned
    return replace(aligned[0], weight=sum(k.weight for k in aligned), bias=sum(k.bias for k in aligned))


def merge_stack(kernels: list[Kernel]) -> Kernel | str:
    """One kernel whose output channels are all kernels' outputs, concatenated in order."""
    if any(k.groups != 1 for k in kernels):
        return "grouped"
    aligned = _aligned(kernels, 1)
    if isinstance(aligned, str):
        return aligned
    return replace(aligned[0], weight=torch.cat([k.weight for k in aligned]),
                   bias=torch.cat([k.bias for k in aligned]))


def _after_pointwise(f: Kernel, s: Kernel) -> Kernel:
    """second(first(x)) for a 1x1 stride-1 first kernel: the second's geometry, summed paddings."""
    padding = tuple(p1 + p2 for p1, p2 in zip(f.padding, s.padding))
    if s.weight.shape[1] == 1:  # depthwise second (an avg-pool): no need to densify it
        mult = s.out_channels // f.out_channels                      # channel multiplier
        w1 = f.weight.reshape(f.out_channels, -1).repeat_interleave(mult, 0)  # [o, i/g1]
        b1 = f.bias.repeat_interleave(mult)
        w = s.weight * w1.view(w1.shape + (1,) * len(s.size))
        b = s.bias + s.weight.flatten(1).sum(1) * b1
        return Kernel(w, b, s.stride, padding, s.dilation, f.groups)
    groups = math.gcd(f.groups, s.groups)
    f, s = f.regroup(groups), s.regroup(groups)
    cout, cmid, cin = s.out_channels // groups, f.out_channels // groups, f.in_channels // groups
    w1 = f.weight.reshape(groups, cmid, cin)
    w2 = s.weight.reshape(groups, cout, cmid, -1)                     # [g, o, m, taps]
    taps = w2.shape[-1]
    w = torch.bmm(w2.transpose(2, 3).reshape(groups, cout * taps, cmid), w1)  # [g, o*taps, i]
    w = w.reshape(groups, cout, taps, cin).transpose(2, 3).reshape((groups * cout, cin) + s.size)
    b = s.bias + torch.bmm(w2.sum(3), f.bias.view(groups, cmid, 1)).reshape(-1)
    return Kernel(w, b, s.stride, padding, s.dilation, groups)


def _before_pointwise(f: Kernel, s: Kernel) -> Kernel:
    """second(first(x)) for a 1x1 unpadded second kernel: the first's geometry, strides multiplied."""
    groups = math.gcd(f.groups, s.groups)
    f, s = f.regroup(groups), s.regroup(groups)
    cout, cmid, cin = s.out_channels // groups, f.out_channels // groups, f.in_channels // groups
    w2 = s.weight.reshape(groups, cout, cmid)
    w1 = f.weight.reshape(groups, cmid, -1)                           # [g, m, i*taps]
    w = torch.bmm(w2, w1).reshape((groups * cout, cin) + f.size)
    b = s.bias + torch.bmm(w2, f.bias.view(groups, cmid, 1)).reshape(-1)
    stride = tuple(a * b_ for a, b_ in zip(f.stride, s.stride))
    return Kernel(w, b, stride, f.padding, f.dilation, groups)


def compose(first: Kernel, second: Kernel) -> Kernel | str:
    """One kernel computing second(first(x)), or why that is not exact."""
    if first.out_channels != second.in_channels:
        return "channel-mismatch"
    if first.pointwise and all(v == 1 for v in first.stride):
        if any(second.padding) and bool((first.bias != 0).any()):
            return "padded-bias"  # the second conv's zero border would replace first's bias
        return _after_pointwise(first, second)
    if second.pointwise and not any(second.padding):
        return _before_pointwise(first, second)
    if first.pointwise:
        return "strided-first"
    return "padded-second" if second.pointwise else "both-spatial"

"""Branches as convolution kernels (all float64, cast back to the weights' dtype when emitted).

A `Kernel` is `conv(base, weight, bias; stride, padding, dilation, groups)`. `branch_of` reads
one branch off the IR, walking back from the value it contributes:

    affine tail   batch_norm, or mul / add / sub / div by a per-channel constant: scales the
                  kernel's output channels and shifts its bias
    core          conv (a zero `pad` feeding it becomes padding), avg_pool (a depthwise kernel
                  1/|k|, when zero padding is counted), or the base itself (identity: a
                  depthwise kernel of ones)

and a kernel changes shape without changing what it computes:

    regroup   groups g -> G (G divides g): the block-diagonal weight spread into G groups, so
              an identity or depthwise branch joins a grouped or dense one
    embed     place the kernel's taps on a grid of K taps D apart from -P (zeros elsewhere),
              so a 1x1, 1x3, 3x1 or smaller odd kernel sits centred in the largest one and a
              dilation-2 3x3 spreads over a dilation-1 5x5

`merge.py` combines kernels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from compiler.ir import Graph, Node, Value
from compiler.pattern import only_feeds
from passes.fold_bn import Affine, affine_of
from passes.fold_bn.affine import AFFINE_OPS


@dataclass(frozen=True)
class Kernel:
    weight: torch.Tensor          # float64 [out, in/groups, *size]
    bias: torch.Tensor            # float64 [out]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int

    @property
    def size(self) -> tuple[int, ...]:
        return tuple(self.weight.shape[2:])

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1] * self.groups

    @property
    def pointwise(self) -> bool:
        return all(k == 1 for k in self.size)

    def cost(self) -> int:
        """Multiply-accumulates per output pixel."""
        return self.weight.numel()

    def taps(self, d: int) -> tuple[int, int]:
        """Offsets (relative to output position * stride) of the first and last tap in dim d."""
        lo = -self.padding[d]
        return lo, lo + self.dilation[d] * (self.size[d] - 1)

    def affine(self, aff: Affine) -> "Kernel":
        s, t = aff.vectors(self.out_channels)
        return replace(self, weight=self.weight * s.view(-1, *[1] * (self.weight.dim() - 1)),
                       bias=self.bias * s + t)

    def regroup(self, groups: int) -> "Kernel":
        if groups == self.groups:
            return self
        out, in_g = self.weight.shape[:2]
        in_new = self.in_channels // groups
        w = self.weight.new_zeros((out, in_new) + self.size)
        o = torch.arange(out)
        start = o // (out // self.groups) * in_g - o // (out // groups) * in_new
        w[o.view(-1, 1), start.view(-1, 1) + torch.arange(in_g).view(1, -1)] = self.weight
        return replace(self, weight=w, groups=groups)

    def embed(self, size: tuple[int, ...], padding: tuple[int, ...], dilation: tuple[int, ...]) -> "Kernel":
        """The same taps on a grid of `size` taps `dilation` apart starting at -`padding`."""
        where = []
        for d in range(len(size)):
            left = (padding[d] - self.padding[d]) // dilation[d]
            step = self.dilation[d] // dilation[d] if self.size[d] > 1 else 1
            where.append(slice(left, left + step * (self.size[d] - 1) + 1, step))
        if tuple(size) == self.size:
            w = self.weight
        else:
            w = self.weight.new_zeros(self.weight.shape[:2] + tuple(size))
            w[(slice(None), slice(None)) + tuple(where)] = self.weight
        return replace(self, weight=w, padding=tuple(padding), dilation=tuple(dilation))

    def output_shape(self, base_shape: tuple[int, ...]) -> tuple[int, ...]:
        spatial = tuple((n + 2 * p - dl * (k - 1) - 1) // s + 1 for n, k, s, p, dl in
                        zip(base_shape[2:], self.size, self.stride, self.padding, self.dilation))
        return (base_shape[0], self.out_channels) + spatial


@dataclass
class Branch:
    """One summand (or concatenated part) expressed as a kernel applied to `base`."""

    base: Value
    kernel: Kernel
    kind: str                                   # conv | avg_pool | identity
    nodes: list[Node] = field(default_factory=list)    # nodes that exist only for this branch
    weights: list[Value] = field(default_factory=list)  # the weights it read (names, is_param)


# ---- reading branches off the IR ---------------------------------------------------------------
def _zero_pad(node: Node, nd: int) -> tuple[int, ...] | None:
    """Symmetric per-dim amounts of a constant-zero pad over the last nd dims, else None."""
    pads = node.attrs["pads"]
    if node.attrs["mode"] != "constant" or node.attrs["value"] != 0.0 or len(pads) > 2 * nd:
        return None
    pads = tuple(pads) + (0,) * (2 * nd - len(pads))
    amounts = tuple(pads[2 * (nd - 1 - d)] for d in range(nd))
    if any(pads[2 * i] != pads[2 * i + 1] or pads[2 * i] < 0 for i in range(nd)):
        return None
    return amounts


def _conv(graph: Graph, node: Node) -> Branch | str:
    x, w = node.inputs[0], node.inputs[1]
    b = node.inputs[2] if len(node.inputs) > 2 else None
    nd = len(node.attrs["stride"])
    if w.data is None or (b is not None and b.data is None):
        return "non-constant-weight"
    if not w.dtype.is_floating_point:
        return "non-float-weight"
    if x.rank != nd + 2:
        return "unbatched"
    a = node.attrs
    w64 = w.data.detach().to(torch.float64)
    b64 = b.data.detach().to(torch.float64) if b is not None else w64.new_zeros(w64.shape[0])
    padding, nodes = tuple(a["padding"]), [node]
    pad = x.producer
    if pad is not None and pad.op == "pad" and (extra := _zero_pad(pad, nd)) is not None:
        padding = tuple(p + e for p, e in zip(padding, extra))
        if only_feeds(graph, x, node):
            nodes.append(pad)
        x = pad.inputs[0]
    kernel = Kernel(w64, b64, tuple(a["stride"]), padding, tuple(a["dilation"]), a["groups"])
    return Branch(x, kernel, "conv", nodes, [v for v in (w, b) if v is not None])


def _avg_pool(graph: Graph, node: Node) -> Branch | str:
    x, a = node.inputs[0], node.attrs
    nd = len(a["kernel"])
    if x.rank != nd + 2 or not x.dtype.is_floating_point:
        return "unbatched"
    if any(a["padding"]) and not a["count_include_pad"]:
        return "avg-pool-excludes-padding"
    channels = x.shape[1]
    w = torch.full((channels, 1) + tuple(a["kernel"]), 1.0 / math.prod(a["kernel"]), dtype=torch.float64)
    kernel = Kernel(w, w.new_zeros(channels), tuple(a["stride"]), tuple(a["padding"]), (1,) * nd, channels)
    if kernel.output_shape(x.shape) != node.outputs[0].shape:
        return "avg-pool-ceil-mode"
    return Branch(x, kernel, "avg_pool", [node])


def identity(base: Value) -> Branch:
    nd, channels = base.rank - 2, base.shape[1]
    w = torch.ones((channels, 1) + (1,) * nd, dtype=torch.float64)
    return Branch(base, Kernel(w, w.new_zeros(channels), (1,) * nd, (0,) * nd, (1,) * nd, channels), "identity")


CORES = {"conv": _conv, "avg_pool": _avg_pool}


def branch_of(graph: Graph, value: Value, owner: Node | None) -> Branch | str | None:
    """`value` as a kernel on some base, a reason it cannot be one, or None (not image-like).

    Nodes are taken into the branch only while each feeds nothing but the branch (`owner` is the
    node reading `value`; None means `value` is shared and becomes the base itself)."""
    if value.rank < 3 or not value.dtype.is_floating_point or value.data is not None:
        return None
    tail: list[Affine] = []
    nodes: list[Node] = []
    v = value
    owned = owner is not None and only_feeds(graph, value, owner)
    while owned and v.producer is not None and v.producer.op in AFFINE_OPS:
        aff = affine_of(v.producer)
        if not isinstance(aff, Affine) or not aff.fits(1) or aff.x.rank != value.rank:
            break
        tail.append(aff)
        nodes.append(v.producer)
        v = aff.x
        owned = only_feeds(graph, v, nodes[-1])
    branch: Branch | str | None = None
    if owned and v.producer is not None and v.producer.op in CORES:
        branch = CORES[v.producer.op](graph, v.producer)
    if branch is None:
        if v.data is not None:
            return None  # a constant under per-channel maps: fold-constants' business
        branch = identity(v)
    if isinstance(branch, str):
        return branch
    for aff in reversed(tail):
        branch.kernel = branch.kernel.affine(aff)
    branch.nodes += nodes
    return branch

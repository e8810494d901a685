"""Which layers `simd-sparsify` prunes, how their weights split into groups, and the masks.

Everything is read off the op's `WeightLayout`: the weight unrolls into matrices
[conv groups, output channels, input positions] (`matrices`), and a SIMD group is `lanes`
consecutive rows of one column, i.e. `lanes` output channels at one (input channel, kernel row,
kernel column). A layer whose output channels are not a multiple of `lanes` keeps a shorter last
group (the kernel pads it). N:M groups are single weights, `m` consecutive input channels at
one kernel position forming one selection window.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from compiler.ir import Graph, Node, Value
from compiler.names import layer_names, matching_pattern
from compiler.ops import get_op
from compiler.ops.interfaces import WeightLayout


@dataclass(eq=False)
class Candidate:
    """A layer whose weight can be pruned in groups."""

    node: Node
    layout: WeightLayout
    weight: Value
    name: str

    @property
    def matrices(self) -> torch.Tensor:
        """The weight as [conv groups, output channels per group, input positions]."""
        return self.layout.matrices(self.weight.data.detach(), self.node)

    @property
    def matrix_shape(self) -> tuple[int, int, int]:
        meta = torch.empty(self.weight.shape, device="meta")
        return tuple(self.layout.matrices(meta, self.node).shape)

    def simd_groups(self, lanes: int) -> int:
        g, rows, cols = self.matrix_shape
        return g * math.ceil(rows / lanes) * cols


def display_name(node: Node, weight: Value) -> str:
    """The layer's module path when its weight has one (`layer1.0.conv1`), else the node name."""
    stem = weight.name.rsplit(".", 1)[0]
    return stem if stem != weight.name else node.name


def find_layers(graph: Graph, *, pattern: str, lanes: int, m: int, skip: Sequence[str] = (),
                only: Sequence[str] = ()) -> tuple[list[Candidate], dict[str, str]]:
    """Candidate layers in graph order, and the layers left alone with the reason why."""
    found, skipped = [], {}
    for node in graph.nodes:
        layout = get_op(node.op).layout
        if layout is None or layout.in_axis is None:
            continue
        weight = layout.weight_value(node)
        if weight is None or weight.data is None or not weight.dtype.is_floating_point:
            continue  # an activation times an activation: nothing to prune
        name = display_name(node, weight)
        names = layer_names(node)
        if only and matching_pattern(only, names) is None:
            continue
        if matching_pattern(skip, names) is not None:
            skipped[name] = "matches skip"
            continue
        layer = Candidate(node, layout, weight, name)
        reason = _why_not(layer, pattern, lanes, m)
        if reason:
            skipped[name] = reason
        else:
            found.append(layer)
    return found, skipped


def _why_not(layer: Candidate, pattern: str, lanes: int, m: int) -> str | None:
    if layer.node.op == "matmul" and layer.weight.rank != 2:
        return "a batched matmul weight (one matrix per batch) has no shared groups"
    g, rows, cols = layer.matrix_shape
    if pattern == "simd" and rows < lanes:
        return (f"{rows} output channel(s) per group, fewer than simd={lanes}: every SIMD group would be "
                "mostly padding (depthwise or narrow layer)")
    if pattern == "nm":
        in_channels = layer.weight.shape[layer.layout.in_axis]
        if in_channels % m:
            return f"{in_channels} input channels per group are not a multiple of m={m}"
    return None


def index_matrices(layer: Candidate) -> torch.Tensor:
    """Flat weight index of every matrix entry: maps a mask in matrix form back to the weight."""
    w = layer.weight.data
    return layer.layout.matrices(torch.arange(w.numel()).view(w.shape), layer.node)


def weight_mask(layer: Candidate, matrix_mask: torch.Tensor) -> torch.Tensor:
    """A [groups, rows, cols] boolean mask as a mask of the weight's own shape."""
    flat = torch.zeros(layer.weight.type.numel, dtype=torch.bool)
    flat[index_matrices(layer).reshape(-1)] = matrix_mask.reshape(-1)
    return flat.view(layer.weight.shape)


def simd_matrix_mask(keep: torch.Tensor, rows: int, lanes: int) -> torch.Tensor:
    """[groups, blocks, cols] kept groups -> [groups, rows, cols] kept weights."""
    g, blocks, cols = keep.shape
    return keep.unsqueeze(2).expand(g, blocks, lanes, cols).reshape(g, blocks * lanes, cols)[:, :rows]


def keep_top(scores: torch.Tensor, kept: int) -> torch.Tensor:
    """Boolean mask of the `kept` highest scores (ties broken by position, lowest index pruned first)."""
    flat = scores.reshape(-1)
    order = torch.sort(flat, stable=True).indices
    mask = torch.zeros(flat.numel(), dtype=torch.bool)
    mask[order[flat.numel() - kept:]] = True
    return mask.view(scores.shape)


def nm_matrix_mask(scores: torch.Tensor, layer: Candidate, n: int, m: int) -> torch.Tensor:
    """Keep the `n` highest of every `m` consecutive input channels, per output channel and kernel
    position. `scores` is [groups, rows, cols] with cols = input channels x kernel positions."""
    g, rows, cols = scores.shape
    in_channels = layer.weight.shape[layer.layout.in_axis]
    kernel = cols // in_channels
    windows = scores.reshape(g, rows, in_channels // m, m, kernel)
    top = windows.topk(n, dim=3).indices
    mask = torch.zeros_like(windows, dtype=torch.bool).scatter_(3, top, True)
    return mask.reshape(g, rows, cols)

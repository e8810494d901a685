"""resize-as-conv: upsampling by whole factors as a depthwise convolution followed by depth-to-space.

Upsampling a map by integer factors (sh, sw) writes output pixel (sh*i + a, sw*j + b) from input
pixels near (i, j) with weights that depend only on the phase (a, b):

* `nearest` (and `nearest-exact`): pixel (i, j) itself, weight 1;
* `bilinear` with align_corners=False: per axis, source position i + d with d = (a + 0.5)/sh - 0.5,
  so weights 1 - |d| on i and |d| on i - 1 (d < 0) or i + 1 (d > 0); F.interpolate clamps the
  neighbour at the border, which is replicate padding. The 2-d weights are the outer product.

So the resize is, exactly: replicate-pad by 1 (bilinear only), a depthwise convolution with
sh*sw output channels per input channel (one 3x3 kernel per phase; 1x1 for nearest), and
depth-to-space (reshape -> permute -> reshape, as conv-transpose-as-conv writes it). The
convolution is an ordinary layer, so quantize and integerize give the resize an integer form and
the HLS backend a stage (the pad becomes its window generator's edge, the depth-to-space a reorder).
The rewrite computes the same sums (float rounding aside); quantizing its weights then rounds
1/16, 3/16 and 9/16 like any other weight. Resizes to sizes that are not whole multiples, other
modes (bicubic, linear, trilinear) and align_corners=True stay as they are, named in the stats.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from compiler.context import DEFAULT_CONTEXT, PassContext
from compiler.ir import Graph, Node
from compiler.passes import Pass, PassResult, register_pass
from passes.depth_to_space import depth_to_space

NEAREST = ("nearest", "nearest-exact")


def _factors(node: Node) -> tuple[int, int] | None:
    x, size = node.inputs[0], node.attrs["size"]
    if x.rank != 4 or len(size) != 2 or any(s % n for s, n in zip(size, x.shape[2:])):
        return None
    return size[0] // x.shape[2], size[1] // x.shape[3]


def why_not(node: Node) -> str | None:
    """Why a resize stays a resize, or None when it is rewritten."""
    mode = node.attrs["mode"]
    if mode not in NEAREST + ("bilinear",):
        return f"mode {mode}"
    if mode == "bilinear" and node.attrs["align_corners"]:
        return "align_corners=True (the phases' weights vary along the map)"
    if _factors(node) is None:
        return f"size {list(node.attrs['size'])} is not a whole multiple of {list(node.inputs[0].shape[2:])}"
    return None


def _taps(factor: int) -> torch.Tensor:
    """[factor, 3]: per output phase, the weights on input offsets -1, 0, +1 along one axis."""
    taps = torch.zeros(factor, 3, dtype=torch.float64)
    for a in range(factor):
        d = (a + 0.5) / factor - 0.5
        taps[a, 1] = 1.0 - abs(d)
        taps[a, 0 if d < 0 else 2] += abs(d)
    return taps


def _kernels(mode: str, sh: int, sw: int) -> torch.Tensor:
    """[sh*sw, 1, k, k]: one kernel per phase (a, b), phase a*sw + b."""
    if mode in NEAREST:
        return torch.ones(sh * sw, 1, 1, 1)
    rows, cols = _taps(sh), _taps(sw)
    return torch.einsum("ak,bl->abkl", rows, cols).reshape(sh * sw, 1, 3, 3).float()


def _rewrite(graph: Graph, node: Node) -> None:
    x, mode = node.inputs[0], node.attrs["mode"]
    sh, sw = _factors(node)
    channels = x.shape[1]
    common = {"before": node, "source": node.source}
    kernels = _kernels(mode, sh, sw)
    weight = graph.add_weight(f"{node.name}.phases", kernels.repeat(channels, 1, 1, 1))
    source = x
    if mode == "bilinear":
        source = graph.create_node("pad", [x], {"pads": [1, 1, 1, 1], "mode": "replicate", "value": 0.0},
                                   name=f"{node.name}.edge", **common).output
    conv = graph.create_node("conv", [source, weight], {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1],
                                                        "groups": channels}, name=node.name, **common)
    graph.replace_all_uses(node.output, depth_to_space(conv.output, (sh, sw), node))


@register_pass("resize-as-conv")
@dataclass(frozen=True)
class ResizeAsConv(Pass):
    """Nearest and bilinear upsampling by whole factors as a depthwise conv plus depth-to-space (exact)."""

    exact: ClassVar[bool] = True

    def run(self, graph: Graph, ctx: PassContext = DEFAULT_CONTEXT) -> PassResult:
        resizes = [n for n in graph.nodes if n.op == "resize"]
        kept = {n.name: why_not(n) for n in resizes if why_not(n) is not None}
        found = [n for n in resizes if n.name not in kept]
        for node in found:
            _rewrite(graph, node)
        if found:
            graph.eliminate_dead_code()
        stats: dict = {"rewritten": len(found)}
        if kept:
            stats["kept"] = kept
        return PassResult(bool(found), stats)

"""Depth-to-space as IR nodes, for the rewrites that compute upsampling as a convolution.

A map [B, C*sh*sw, H, W] whose channel c*sh*sw + a*sw + b holds output phase (a, b) of channel c
becomes [B, C, H*sh, W*sw] with reshape -> permute -> reshape (exact: it only moves elements).
"""
from __future__ import annotations

from compiler.ir import Node, Value


def depth_to_space(phases: Value, factors: tuple[int, int], node: Node) -> Value:
    """The interleaved map of `phases`, built in front of `node` (named and located after it)."""
    graph, (sh, sw) = node.graph, factors
    batch, channels, h, w = phases.shape[0], phases.shape[1] // (sh * sw), phases.shape[2], phases.shape[3]
    common = {"before": node, "source": node.source}
    split = graph.create_node("reshape", [phases], {"shape": [batch, channels, sh, sw, h, w]},
                              name=f"{node.name}.taps", **common)
    moved = graph.create_node("permute", [split.output], {"dims": [0, 1, 4, 2, 5, 3]},
                              name=f"{node.name}.interleave", **common)
    return graph.create_node("reshape", [moved.output], {"shape": [batch, channels, h * sh, w * sw]},
                             name=f"{node.name}.depth_to_space", **common).output

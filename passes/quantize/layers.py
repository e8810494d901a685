"""Which nodes quantize, and along which axes.

A rule per op names the constant weight input (if any), the activation inputs, the weight's
output-channel axis (per-channel scales), its reduction axis (group/block scales: MXFP4 and NVFP4
blocks run along the dot products) and the activations' channel axis. Layers are matched by node
name (or weight name) against glob patterns, or name prefixes, for `skip` and `overrides`.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from compiler.ir import Graph, Node

# op -> (weight input, activation inputs, weight channel axis, weight reduction axis, act channel axis)
RULES: dict[str, tuple[int | None, tuple[int, ...], int, int, int]] = {
    "conv": (1, (0,), 0, 1, 1),
    "conv_transpose": (1, (0,), 1, 0, 1),
    "linear": (1, (0,), 0, 1, -1),
    "matmul": (1, (0,), -1, -2, -1),
    "embedding": (1, (), 0, 1, -1),
}
# Ops with parameters that stay float on purpose (normalization is cheap and range-sensitive).
FLOAT_BY_DESIGN = frozenset({"batch_norm", "layer_norm", "group_norm", "fake_quant"})


@dataclass(eq=False)
class Layer:
    node: Node
    weight: int | None          # input index of the constant weight, None when it is an activation
    acts: tuple[int, ...]       # input indices quantized as activations
    w_channel: int
    w_reduce: int
    a_channel: int

    @property
    def name(self) -> str:
        return self.node.name


def matches(node: Node, patterns) -> str | None:
    """The first glob pattern matching the node's name or its weight's name, else None."""
    names = [node.name] + [v.name.removesuffix(".weight") for v in node.inputs[1:2] if v is not None]
    for pattern in patterns:  # a plain name also matches everything under it ("layer1" -> "layer1.0.conv")
        if any(fnmatch.fnmatchcase(n, pattern) or n.startswith(pattern + ".") for n in names):
            return pattern
    return None


def find_layers(graph: Graph, skip) -> tuple[list[Layer], dict[str, int], int]:
    """(quantizable layers, ops with parameters left float -> count, skipped count)."""
    layers, left_float, skipped = [], {}, 0
    for node in graph.nodes:
        rule = RULES.get(node.op)
        if rule is None:
            if node.op not in FLOAT_BY_DESIGN and any(v is not None and v.is_param and v.data is not None
                                                      and v.dtype.is_floating_point for v in node.inputs):
                left_float[node.op] = left_float.get(node.op, 0) + 1
            continue
        if matches(node, skip):
            skipped += 1
            continue
        w, acts, wc, wr, ac = rule
        weight = node.inputs[w] if w is not None and w < len(node.inputs) else None
        if weight is not None and weight.producer is not None and weight.producer.op == "fake_quant":
            w = None  # quantized already (an earlier quantize pass)
        elif weight is None or weight.data is None:
            if node.op == "embedding":
                continue  # an embedding of run-time weights: nothing to quantize
            w, acts = None, tuple(i for i in (0, 1) if i < len(node.inputs))
        elif not weight.dtype.is_floating_point:
            continue
        acts = tuple(i for i in acts if node.inputs[i] is not None and node.inputs[i].dtype.is_floating_point)
        layers.append(Layer(node, w, acts, wc, wr, ac))
    return layers, left_float, skipped

"""Which nodes quantize, and along which axes.

Every op with a `WeightLayout` (compiler/ops/interfaces.py) is a layer: the layout names the
weight input, the activation inputs, the weight's per-channel axis (one scale per dot-product
row), its reduction axis (group/block scales: MXFP4 and NVFP4 blocks run along the dot products)
and the activations' channel axis. Layers are matched by node name (or weight name) against glob
patterns, or name prefixes, for `skip` and `overrides`.
"""
from __future__ import annotations

from dataclasses import dataclass

from compiler.ir import Graph, Node
from compiler.names import layer_names, matching_pattern
from compiler.ops import get_op
from compiler.ops.interfaces import WeightLayout

# Ops with parameters that stay float on purpose (normalization is cheap and range-sensitive).
FLOAT_BY_DESIGN = frozenset({"batch_norm", "layer_norm", "group_norm", "fake_quant"})


@dataclass(eq=False)
class Layer:
    node: Node
    layout: WeightLayout | None  # None: a residual add or concat (quantize{residuals=true})
    weight: int | None          # input index of the constant weight, None when it is an activation
    acts: tuple[int, ...]       # input indices quantized as activations

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def w_channel(self) -> int:
        return self.layout.quant_row_axis

    @property
    def w_reduce(self) -> int:
        return self.layout.quant_reduce_axis

    @property
    def a_channel(self) -> int:
        return self.layout.input_channel_axis(self.node) if self.layout.activations else -1


def matches(node: Node, patterns) -> str | None:
    """The first pattern matching the node's name or its weight's name, else None."""
    return matching_pattern(patterns, layer_names(node))


def find_layers(graph: Graph, skip) -> tuple[list[Layer], dict[str, int], int]:
    """(quantizable layers, ops with parameters left float -> count, skipped count)."""
    layers, left_float, skipped = [], {}, 0
    for node in graph.nodes:
        layout = get_op(node.op).layout
        if layout is None:
            if node.op not in FLOAT_BY_DESIGN and any(v is not None and v.is_param and v.data is not None
                                                      and v.dtype.is_floating_point for v in node.inputs):
                left_float[node.op] = left_float.get(node.op, 0) + 1
            continue
        if matches(node, skip):
            skipped += 1
            continue
        w, acts = layout.weight, layout.activations
        weight = layout.weight_value(node)
        if weight is not None and weight.producer is not None and weight.producer.op == "fake_quant":
            w = None  # quantized already (an earlier quantize pass)
        elif weight is None or weight.data is None:
            if not layout.activations:
                continue  # a lookup table of run-time weights: nothing to quantize
            w, acts = None, tuple(sorted({*layout.activations, layout.weight}))  # two activations (attention)
        elif not weight.dtype.is_floating_point:
            continue
        acts = tuple(i for i in acts if node.inputs[i] is not None and node.inputs[i].dtype.is_floating_point)
        layers.append(Layer(node, layout, w, acts))
    return layers, left_float, skipped

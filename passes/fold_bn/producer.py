"""Fold an affine map into the layer that produces its input.

    y = (W x + b) * s + t   =>   W' = W * s (per output channel),  b' = b * s + t

Any op whose `WeightLayout` contracts its input and has a bias qualifies (conv, conv_transpose,
linear); the layout says which weight axis holds the output channels and what groups mean.

A matmul by a constant [in, out] matrix becomes a linear node carrying the folded weight and bias.
One permute between the producer and the map is looked through (BatchNorm1d over a linear's
features after a transpose): the map's axis is followed back through the permutation.
"""
from __future__ import annotations

import torch

from compiler.ir import Graph, Node, Value
from compiler.ops import get_op
from compiler.ops.interfaces import WeightLayout
from compiler.pattern import only_feeds
from passes.fold_bn.affine import Affine


def producer_layout(node: Node | None) -> WeightLayout | None:
    """The layout of a layer an affine map after it can fold into: one that contracts its input
    and has a bias to take the shift (a matmul gets one by becoming a linear)."""
    layout = get_op(node.op).layout if node is not None else None
    if layout is None or layout.in_axis is None or (layout.bias is None and node.op != "matmul"):
        return None
    return layout




def fold_into_producer(graph: Graph, aff: Affine) -> str | None:
    """Fold `aff` into the node producing its input; None on success, else the reason not to."""
    x, axis, reader = aff.x, aff.axis, aff.node
    x_index = aff.node.inputs.index(aff.x)  # the matmul case replaces x itself
    prod = x.producer
    if prod is not None and prod.op == "permute":
        if not only_feeds(graph, x, reader):
            return "producer-output-shared"
        if axis is not None:
            axis = prod.attrs["dims"][axis] % x.rank
        reader, x = prod, prod.inputs[0]
        prod = x.producer
    layout = producer_layout(prod)
    if layout is None:
        return "unsupported-producer"
    if not only_feeds(graph, x, reader):
        return "producer-output-shared"
    weight, bias = layout.weight_value(prod), layout.bias_value(prod)
    if prod.op == "matmul" and (prod.inputs[0].data is not None or weight.rank != 2):
        return "non-constant-operand"
    if weight.data is None or (bias is not None and bias.data is None):
        return "non-constant-operand"
    if not weight.dtype.is_floating_point:
        return "non-float-weight"
    channel_axis = layout.output_channel_axis(prod)
    if axis is not None and axis != channel_axis:
        return "linear-not-2d" if layout.channels_last else "channel-mismatch"
    scale, shift = aff.vectors(x.shape[channel_axis])

    w64 = weight.data.detach().to(torch.float64)
    b64 = bias.data.detach().to(torch.float64) if bias is not None else torch.zeros_like(scale)
    dtype = weight.dtype
    new_w = layout.scale_output_channels(w64, scale, prod)
    if prod.op == "matmul":  # the linear it becomes holds the weight as [out, in]
        new_w = new_w.t().contiguous()
    new_w = new_w.to(dtype)
    new_b = (b64 * scale + shift).to(dtype)
    stem = weight.name.removesuffix(".weight") if weight.name.endswith(".weight") else prod.name
    if prod.op == "matmul":  # becomes linear(x, W'.T, b')
        w_val = graph.add_weight(f"{stem}.weight", new_w, is_param=weight.is_param)
        b_val = graph.add_weight(f"{stem}.bias", new_b, is_param=weight.is_param)
        linear = graph.create_node("linear", [prod.inputs[0], w_val, b_val], name=prod.name,
                                   source=prod.source, before=prod)
        graph.replace_all_uses(prod.outputs[0], linear.outputs[0])
        graph.erase_node(prod)
    else:
        if aff.scale is not None:
            graph.set_input(prod, layout.weight, graph.rebind_weight(weight, new_w, prod))
        if bias is not None:
            graph.set_input(prod, layout.bias, graph.rebind_weight(bias, new_b, prod))
        else:
            graph.set_input(prod, layout.bias, graph.add_weight(f"{stem}.bias", new_b, is_param=weight.is_param))
    graph.replace_all_uses(aff.node.outputs[0], aff.node.inputs[x_index])
    graph.erase_node(aff.node)
    return None

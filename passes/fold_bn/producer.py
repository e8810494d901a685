"""Fold an affine map into the conv / conv_transpose / linear / matmul that produces its input.

    y = (W x + b) * s + t   =>   W' = W * s (per output channel),  b' = b * s + t

A matmul by a constant [in, out] matrix becomes a linear node carrying the folded weight and bias.
One permute between the producer and the map is looked through (BatchNorm1d over a linear's
features after a transpose): the map's axis is followed back through the permutation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from compiler.ir import Graph, Node, Value
from compiler.pattern import only_feeds
from passes.fold_bn.affine import Affine


def _scale_out_dim0(w: torch.Tensor, s: torch.Tensor, node: Node) -> torch.Tensor:
    """conv [out, in/g, *k] and linear [out, in]: output channels are dim 0."""
    return w * s.view(-1, *([1] * (w.dim() - 1)))


def _scale_conv_transpose(w: torch.Tensor, s: torch.Tensor, node: Node) -> torch.Tensor:
    """conv_transpose [in, out/g, *k]: output channel g*(out/g)+j lives at [group g rows, j]."""
    g = node.attrs["groups"]
    cin, cout_g, *k = w.shape
    grouped = w.reshape(g, cin // g, cout_g, *k)
    return (grouped * s.view(g, 1, cout_g, *([1] * len(k)))).reshape(w.shape)


def _scale_matmul(w: torch.Tensor, s: torch.Tensor, node: Node) -> torch.Tensor:
    """matmul by [in, out]: returned as a linear weight [out, in]."""
    return (w * s.view(1, -1)).t().contiguous()


def _conv_axis(node: Node) -> int:
    return node.outputs[0].rank - len(node.attrs["stride"]) - 1  # unbatched convs have no dim 0


def _last_axis(node: Node) -> int:
    return node.outputs[0].rank - 1


@dataclass(frozen=True)
class ProducerRule:
    axis: Callable[[Node], int]                       # output axis holding the channels
    scale: Callable[[torch.Tensor, torch.Tensor, Node], torch.Tensor]


PRODUCERS: dict[str, ProducerRule] = {
    "conv": ProducerRule(_conv_axis, _scale_out_dim0),
    "conv_transpose": ProducerRule(_conv_axis, _scale_conv_transpose),
    "linear": ProducerRule(_last_axis, _scale_out_dim0),
    "matmul": ProducerRule(_last_axis, _scale_matmul),
}


def _arg(node: Node, i: int) -> Value | None:
    return node.inputs[i] if i < len(node.inputs) else None


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
    if prod is None or prod.op not in PRODUCERS:
        return "unsupported-producer"
    if not only_feeds(graph, x, reader):
        return "producer-output-shared"
    rule = PRODUCERS[prod.op]
    weight, bias = prod.inputs[1], _arg(prod, 2)
    if prod.op == "matmul" and (prod.inputs[0].data is not None or weight.rank != 2):
        return "non-constant-operand"
    if weight.data is None or (bias is not None and bias.data is None):
        return "non-constant-operand"
    if not weight.dtype.is_floating_point:
        return "non-float-weight"
    channel_axis = rule.axis(prod)
    if axis is not None and axis != channel_axis:
        return "linear-not-2d" if prod.op in ("linear", "matmul") else "channel-mismatch"
    scale, shift = aff.vectors(x.shape[channel_axis])

    w64 = weight.data.detach().to(torch.float64)
    b64 = bias.data.detach().to(torch.float64) if bias is not None else torch.zeros_like(scale)
    dtype = weight.dtype
    new_w = rule.scale(w64, scale, prod).to(dtype)
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
            graph.set_input(prod, 1, graph.rebind_weight(weight, new_w, prod))
        if bias is not None:
            graph.set_input(prod, 2, graph.rebind_weight(bias, new_b, prod))
        else:
            graph.set_input(prod, 2, graph.add_weight(f"{stem}.bias", new_b, is_param=weight.is_param))
    graph.replace_all_uses(aff.node.outputs[0], aff.node.inputs[x_index])
    graph.erase_node(aff.node)
    return None

"""Fold an affine map into the layers that consume its output (any op whose `WeightLayout`
contracts its input channels and has a bias: conv, linear).

    W (x * s + t) + b   =>   W' = W * s (per input channel),  b' = b + sum(W * t)

Exact for linear, and for a conv only when the conv does not zero-pad (a padded border would
see 0 where the map gives t) or the shift is zero. Every consumer must qualify, since the map's
node disappears; a weight shared between consumers gets a new value per consumer.
"""
from __future__ import annotations

import torch

from compiler.ir import Graph, Node
from compiler.ops import get_op
from compiler.ops.interfaces import WeightLayout
from passes.fold_bn.affine import Affine


def consumer_layout(node: Node) -> WeightLayout | None:
    """The layout of a layer that can absorb a per-input-channel map: it contracts its input
    channels with a weight and has a bias for the shift's contribution."""
    layout = get_op(node.op).layout
    if layout is None or layout.in_axis is None or layout.bias is None or layout.transposed:
        return None
    return layout


def _padded(node: Node) -> bool:
    return any(node.attrs.get("padding", ()))


def _refusal(graph: Graph, aff: Affine) -> str | None:
    out = aff.node.outputs[0]
    if out in graph.outputs or not out.users:
        return "unsupported-consumer"
    for user in out.users:
        layout = consumer_layout(user)
        x_index = layout.activations[0] if layout is not None else None
        if layout is None or user.inputs[x_index] is not out or \
                any(v is out for i, v in enumerate(user.inputs) if i != x_index):
            return "unsupported-consumer"
        weight, bias = layout.weight_value(user), layout.bias_value(user)
        if weight.data is None or (bias is not None and bias.data is None):
            return "non-constant-operand"
        if not weight.dtype.is_floating_point:
            return "non-float-weight"
        if not aff.fits(layout.input_channel_axis(user)):
            return "channel-mismatch"
        if aff.shifts() and _padded(user):
            return "padded-consumer"
    return None


def fold_into_consumers(graph: Graph, aff: Affine) -> str | None:
    """Fold `aff` into every consumer of its output; None on success, else the reason not to."""
    reason = _refusal(graph, aff)
    if reason is not None:
        return reason
    out = aff.node.outputs[0]
    for user in list(out.users):
        layout = consumer_layout(user)
        weight, bias = layout.weight_value(user), layout.bias_value(user)
        scale, shift = aff.vectors(aff.x.shape[layout.input_channel_axis(user)])
        w64 = weight.data.detach().to(torch.float64)
        channels = w64.shape[layout.out_axis]
        b64 = bias.data.detach().to(torch.float64) if bias is not None else w64.new_zeros(channels)
        new_w = layout.scale_input_channels(w64, scale, user)
        # the shift adds sum_i W[o, i] * t[i] to output channel o (every window is whole: unpadded)
        moved = layout.scale_input_channels(w64, shift, user).movedim(layout.out_axis, 0)
        new_b = b64 + moved.reshape(channels, -1).sum(1)
        dtype = weight.dtype
        if aff.scale is not None:
            graph.set_input(user, layout.weight, graph.rebind_weight(weight, new_w.to(dtype), user))
        if bias is not None:
            graph.set_input(user, layout.bias, graph.rebind_weight(bias, new_b.to(dtype), user))
        elif aff.shift is not None:
            stem = weight.name.removesuffix(".weight") if weight.name.endswith(".weight") else user.name
            graph.set_input(user, layout.bias, graph.add_weight(f"{stem}.bias", new_b.to(dtype),
                                                                is_param=weight.is_param))
        graph.set_input(user, layout.activations[0], aff.x)
    graph.erase_node(aff.node)
    return None

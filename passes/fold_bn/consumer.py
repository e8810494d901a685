"""Fold an affine map into the conv / linear layers that consume its output.

    W (x * s + t) + b   =>   W' = W * s (per input channel),  b' = b + sum(W * t)

Exact for linear, and for a conv only when the conv does not zero-pad (a padded border would
see 0 where the map gives t) or the shift is zero. Every consumer must qualify, since the map's
node disappears; a weight shared between consumers gets a new value per consumer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from compiler.ir import Graph, Node
from passes.fold_bn.affine import Affine


def _conv_channel_axis(node: Node) -> int:
    return node.inputs[0].rank - len(node.attrs["stride"]) - 1


def _conv_check(node: Node, aff: Affine) -> str | None:
    if aff.shifts() and any(node.attrs["padding"]):
        return "padded-consumer"
    return None


def _conv_fold(w: torch.Tensor, b: torch.Tensor, s: torch.Tensor, t: torch.Tensor, node: Node):
    """w [out, in/g, *k]: input channel of w[o, i] is (o // (out/g)) * (in/g) + i."""
    out, in_g = w.shape[:2]
    groups = node.attrs["groups"]
    channel = (torch.arange(out) // (out // groups) * in_g).view(-1, 1) + torch.arange(in_g).view(1, -1)
    expand = (...,) + (None,) * (w.dim() - 2)
    return w * s[channel][expand], b + (w * t[channel][expand]).flatten(1).sum(1)


def _linear_fold(w: torch.Tensor, b: torch.Tensor, s: torch.Tensor, t: torch.Tensor, node: Node):
    return w * s.view(1, -1), b + w @ t


@dataclass(frozen=True)
class ConsumerRule:
    axis: Callable[[Node], int]                     # axis of the consumer's input holding channels
    check: Callable[[Node, Affine], str | None]
    fold: Callable                                  # (w, b, scale, shift, node) -> (w', b')


CONSUMERS: dict[str, ConsumerRule] = {
    "conv": ConsumerRule(_conv_channel_axis, _conv_check, _conv_fold),
    "linear": ConsumerRule(lambda n: n.inputs[0].rank - 1, lambda n, a: None, _linear_fold),
}


def _refusal(graph: Graph, aff: Affine) -> str | None:
    out = aff.node.outputs[0]
    if out in graph.outputs or not out.users:
        return "unsupported-consumer"
    for user in out.users:
        rule = CONSUMERS.get(user.op)
        if rule is None or user.inputs[0] is not out or out in user.inputs[1:]:
            return "unsupported-consumer"
        weight, bias = user.inputs[1], user.inputs[2] if len(user.inputs) > 2 else None
        if weight.data is None or (bias is not None and bias.data is None):
            return "non-constant-operand"
        if not weight.dtype.is_floating_point:
            return "non-float-weight"
        if not aff.fits(rule.axis(user)):
            return "channel-mismatch"
        reason = rule.check(user, aff)
        if reason is not None:
            return reason
    return None


def fold_into_consumers(graph: Graph, aff: Affine) -> str | None:
    """Fold `aff` into every consumer of its output; None on success, else the reason not to."""
    reason = _refusal(graph, aff)
    if reason is not None:
        return reason
    out = aff.node.outputs[0]
    for user in list(out.users):
        rule = CONSUMERS[user.op]
        weight, bias = user.inputs[1], user.inputs[2] if len(user.inputs) > 2 else None
        scale, shift = aff.vectors(aff.x.shape[rule.axis(user)])
        w64 = weight.data.detach().to(torch.float64)
        b64 = bias.data.detach().to(torch.float64) if bias is not None else w64.new_zeros(w64.shape[0])
        new_w, new_b = rule.fold(w64, b64, scale, shift, user)
        dtype = weight.dtype
        if aff.scale is not None:
            graph.set_input(user, 1, graph.rebind_weight(weight, new_w.to(dtype), user))
        if bias is not None:
            graph.set_input(user, 2, graph.rebind_weight(bias, new_b.to(dtype), user))
        elif aff.shift is not None:
            stem = weight.name.removesuffix(".weight") if weight.name.endswith(".weight") else user.name
            graph.set_input(user, 2, graph.add_weight(f"{stem}.bias", new_b.to(dtype), is_param=weight.is_param))
        graph.set_input(user, 0, aff.x)
    graph.erase_node(aff.node)
    return None

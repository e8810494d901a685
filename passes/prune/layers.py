"""Rules for layers with weights: which weight dims follow which activation dims.

Layers (conv, conv_transpose, linear: whatever has a `WeightLayout` that contracts its input)
start new channel classes shared with their weight's output axis and bias; their input channels
are coupled with the weight's input axis. A grouped convolution splits
its channels into (group, channel in group) coordinates, so only whole groups go (a depthwise
conv couples its output channels with its input channels). Norm layers couple their statistics
and affine parameters with the normalized dims; matmul couples the contracted dims and the batch
dims (attention heads flow through here).
"""
from __future__ import annotations

from compiler.ir import Node
from compiler.ops import get_op
from passes.prune.context import ChannelState, merge, pin_spatial, split


def weighted(cx: ChannelState, node: Node) -> None:
    """A layer whose weight contracts its input channels (conv, conv_transpose, linear), read off
    its `WeightLayout`. With groups, the axis holding per-group channels couples with the channel
    inside the group, and the group coordinate of the inputs is the one of the outputs."""
    layout = get_op(node.op).layout
    x, w, b = node.inputs[layout.activations[0]], layout.weight_value(node), layout.bias_value(node)
    bias = [(b, 0)] if b is not None else []
    c, g = layout.input_channel_axis(node), layout.group_count(node)
    w_in, w_out = layout.in_axis % w.rank, layout.out_axis % w.rank
    spatial = x.rank - c - 1
    if g > 1 and layout.grouped_axis == "out":  # weight [in, out/g, *k]
        in_ids = cx.join([(x, c), (w, w_in)], w.shape[w_in])
        pin_spatial(cx, node, cx.dims(x)[c + 1:])
        per_group = cx.join([(w, w_out)], w.shape[w_out])
        g_in, _ = split(cx, in_ids, [g, w.shape[w_in] // g])
        out_ids = merge(cx, [g_in, per_group], [g, w.shape[w_out]])
        if b is not None:
            cx.couple(b, 0, out_ids)
    elif g > 1:  # weight [out, in/g, *k]
        in_ids = cx.dims(x)[c]
        pin_spatial(cx, node, cx.dims(x)[c + 1:])
        out_ids = cx.join([(w, w_out)] + bias, w.shape[w_out])
        g_in, i_in = split(cx, in_ids, [g, w.shape[w_in]])
        cx.couple(w, w_in, i_in)
        g_out, _ = split(cx, out_ids, [g, w.shape[w_out] // g])
        cx.classes.unify(g_in, g_out)
    else:
        cx.join([(x, c), (w, w_in)], w.shape[w_in])
        if spatial:
            pin_spatial(cx, node, cx.dims(x)[c + 1:])
        out_ids = cx.join([(w, w_out)] + bias, w.shape[w_out])
    cx.set(node.output, cx.dims(x)[:c] + [out_ids] + [None] * spatial)


def matmul(cx: ChannelState, node: Node) -> None:
    a, b = node.inputs
    da, db = cx.dims(a), cx.dims(b)
    if a.rank == 1 and b.rank == 1:
        cx.join([(a, 0), (b, 0)], a.shape[0])
        return cx.set(node.output, [])
    if a.rank == 1:
        cx.join([(a, 0), (b, b.rank - 2)], a.shape[0])
        return cx.set(node.output, db[:-2] + [db[-1]])
    if b.rank == 1:
        cx.join([(a, a.rank - 1), (b, 0)], b.shape[0])
        return cx.set(node.output, da[:-1])
    cx.join([(a, a.rank - 1), (b, b.rank - 2)], a.shape[-1])
    out = node.output
    batch = []
    for i in range(out.rank - 2):
        members = []
        for v in (a, b):
            j = i - (out.rank - v.rank)
            if j >= 0 and v.shape[j] == out.shape[i]:
                members.append((v, j))
            elif j >= 0:
                cx.classes.pin_all(cx.dims(v)[j], "broadcast")
        batch.append(cx.join(members, out.shape[i]) if members else None)
    cx.set(out, batch + [cx.dims(a)[-2], cx.dims(b)[-1]])


def embedding(cx: ChannelState, node: Node) -> None:
    idx, w = node.inputs
    cx.set(node.output, cx.dims(idx) + [cx.join([(w, 1)], w.shape[1])])


def batch_norm(cx: ChannelState, node: Node) -> None:
    x = node.inputs[0]
    members = [(x, 1)] + [(v, 0) for v in node.inputs[1:] if v is not None]
    ids = cx.join(members, x.shape[1])
    dims = cx.dims(x)
    cx.set(node.output, dims[:1] + [ids] + dims[2:])


def layer_norm(cx: ChannelState, node: Node) -> None:
    """LayerNorm over the trailing dims: its weight and bias follow them (statistics change)."""
    x = node.inputs[0]
    n = len(node.attrs["normalized_shape"])
    params = [v for v in node.inputs[1:] if v is not None]
    dims = list(cx.dims(x))
    for i in range(n):
        d = x.rank - n + i
        dims[d] = cx.join([(x, d)] + [(p, i) for p in params], x.shape[d])
    cx.set(node.output, dims)


def group_norm(cx: ChannelState, node: Node) -> None:
    """GroupNorm: only whole groups may go (statistics of the other groups stay exact)."""
    x = node.inputs[0]
    params = [v for v in node.inputs[1:] if v is not None]
    ids = cx.join([(x, 1)] + [(p, 0) for p in params], x.shape[1])
    groups = node.attrs["num_groups"]
    _, inner = split(cx, ids, [groups, x.shape[1] // groups])
    cx.classes.pin_all(inner, "channel inside a GroupNorm group")
    dims = cx.dims(x)
    cx.set(node.output, dims[:1] + [ids] + dims[2:])


def prelu(cx: ChannelState, node: Node) -> None:
    x, w = node.inputs
    if x.rank >= 2 and w.shape[0] == x.shape[1] and x.shape[1] > 1:
        cx.join([(x, 1), (w, 0)], x.shape[1])
    cx.set(node.output, cx.dims(x))


def recurrent(cx: ChannelState, node: Node) -> None:
    """lstm / gru: the input features may go with w_ih's input columns; the hidden units stay
    (each one feeds every gate and, through w_hh, every step), and so do the outputs and states."""
    x, w_ih = node.inputs[0], node.inputs[1]
    cx.join([(x, 2), (w_ih, 2)], x.shape[2])
    dims = cx.dims(x)
    for ids in dims[:2]:
        cx.classes.pin_all(ids, f"sequence and batch of {node.op} ({node.name})")
    for i, v in enumerate(node.inputs[1:], start=1):
        if v is not None:
            for d, ids in enumerate(cx.dims(v)):
                if (i, d) != (1, 2):
                    cx.classes.pin_all(ids, f"hidden units of {node.op} ({node.name})")
    for out in node.outputs:
        cx.set(out, [None] * out.rank)

"""Per-op propagation rules: how each op maps channel indices of its inputs to its outputs.

A rule gets the analysis context and a node. It reads the index arrays of the node's input dims
(`cx.dims(v)`), couples the dims that must shrink together (`cx.join`), and sets the index arrays
of the output dims (`cx.set`). A dim described by `None` holds fixed indices (batch, spatial,
sequence, vocabulary); an array holds one class id per index (see classes.py).

`rule_for(op)` picks the rule: ops with a rule of their own are in `RULES` (reductions here, data
movement in movement.py, norms and lookups in layers.py); elementwise ops and layers with a
`WeightLayout` get theirs from what the op registry declares. Anything an op does not say stays
fixed: an op with no rule pins every channel of its inputs and gives outputs with fixed dims, so
an unknown op never gets a wrong index mapping.
"""
from __future__ import annotations

from compiler.ir import Node
from compiler.ops import find_op
from compiler.ops.interfaces import Trait
from passes.prune import layers, movement
from passes.prune.context import ChannelState, norm_dim, pin_spatial


# ---- generic ------------------------------------------------------------------------------------
def passthrough(cx: ChannelState, node: Node) -> None:
    cx.set(node.output, cx.dims(node.inputs[0]))


def pin_dims(*keys: str):
    """Pass through, but the dims named by attributes (`dim`, `dims`) are reduced over: keep them."""
    def rule(cx: ChannelState, node: Node) -> None:
        x = node.inputs[0]
        dims = cx.dims(x)
        for d in _attr_dims(node, keys, x.rank):
            cx.classes.pin_all(dims[d], f"{node.op} over the dim ({node.name})")
        passthrough(cx, node)
    return rule


def _attr_dims(node: Node, keys: tuple[str, ...], rank: int) -> list[int]:
    out = []
    for key in keys:
        value = node.attrs.get(key)
        values = value if isinstance(value, (tuple, list)) else [value]
        if isinstance(value, (tuple, list)) and not value:
            values = range(rank)  # reduce over every dim
        out += [norm_dim(d, rank) for d in values if d is not None]
    return out


def broadcast(cx: ChannelState, node: Node) -> None:
    """Elementwise with numpy broadcasting: dims of equal size are coupled."""
    out = node.output
    rank = out.rank
    result = []
    for i in range(rank):
        size = out.shape[i]
        members = []
        for v in node.inputs:
            if v is None:
                continue
            j = i - (rank - v.rank)
            if j < 0:
                continue
            if v.shape[j] == size:
                members.append((v, j))
            else:  # a size-1 dim broadcast over the output: its one index must stay
                cx.classes.pin_all(cx.dims(v)[j], "broadcast")
        result.append(cx.join(members, size) if members else None)
    cx.set(out, result)


def compare(cx: ChannelState, node: Node) -> None:
    """A comparison against a constant indexes a value domain, not features: `ids == arange(257)`
    is a one-hot over a vocabulary, so the dims the constant spans are never pruned."""
    broadcast(cx, node)
    for v in node.inputs:
        if v is not None and v.data is not None:
            for ids in cx.dims(v):
                cx.classes.pin_all(ids, f"compared against a constant, a vocabulary-like axis ({node.name})")


def reduce(cx: ChannelState, node: Node) -> None:
    x = node.inputs[0]
    dims = cx.dims(x)
    reduced = set(_attr_dims(node, ("dims",), x.rank))
    for d in reduced:
        cx.classes.pin_all(dims[d], f"{node.op} over the dim ({node.name})")
    keep = node.attrs.get("keepdim", False)
    cx.set(node.output, [None if d in reduced else ids for d, ids in enumerate(dims)
                         if keep or d not in reduced])


def _select_along_dim(cx: ChannelState, node: Node) -> tuple[int, list]:
    """argmax/argmin/topk pick entries along `dim`: that dim is kept whole, the others pass."""
    x = node.inputs[0]
    dims = cx.dims(x)
    d = norm_dim(node.attrs["dim"], x.rank)
    cx.classes.pin_all(dims[d], f"{node.op} over the dim ({node.name})")
    return d, [None if i == d else ids for i, ids in enumerate(dims)]


def arg_reduce(cx: ChannelState, node: Node) -> None:
    d, out = _select_along_dim(cx, node)
    cx.set(node.output, out if node.attrs["keepdim"] else out[:d] + out[d + 1:])


def topk(cx: ChannelState, node: Node) -> None:
    _, out = _select_along_dim(cx, node)
    for o in node.outputs:
        cx.set(o, list(out))


def spatial(cx: ChannelState, node: Node) -> None:
    """Pooling and resizing: the trailing k spatial dims are replaced, the others pass."""
    x = node.inputs[0]
    key = next(k for k in ("kernel", "output_size", "size") if k in node.attrs)
    k = len(node.attrs[key])
    dims = cx.dims(x)
    pin_spatial(cx, node, dims[x.rank - k:])
    out = dims[:x.rank - k] + [None] * k
    for o in node.outputs:
        cx.set(o, list(out))


_COMPARE = ("equal", "less", "greater", "less_equal", "greater_equal")

RULES = {
    **{op: compare for op in _COMPARE},
    "softmax": pin_dims("dim"), "log_softmax": pin_dims("dim"), "cumsum": pin_dims("dim"),
    "reduce_mean": reduce, "reduce_sum": reduce, "reduce_max": reduce, "reduce_min": reduce,
    "argmax": arg_reduce, "argmin": arg_reduce, "topk": topk,
    "max_pool": spatial, "avg_pool": spatial, "adaptive_avg_pool": spatial, "adaptive_max_pool": spatial,
    "resize": spatial,
    "reshape": movement.reshape, "permute": movement.permute, "expand": movement.expand,
    "tile": movement.tile, "concat": movement.concat,
    "split": movement.split_op, "slice": movement.slice_op, "pad": movement.pad, "gather": movement.gather,
    "matmul": layers.matmul,
    "embedding": layers.embedding, "batch_norm": layers.batch_norm, "layer_norm": layers.layer_norm,
    "group_norm": layers.group_norm, "prelu": layers.prelu,
    "lstm": layers.recurrent, "gru": layers.recurrent,
}


def rule_for(op: str):
    """The rule for `op`: its own entry above, else one its registry entry implies (elementwise
    ops pass channels through or broadcast them, layers couple them through their weight layout),
    else None (the caller keeps every channel the node touches)."""
    rule = RULES.get(op)
    if rule is not None:
        return rule
    opdef = find_op(op)
    if opdef is None:
        return None
    if opdef.has(Trait.ELEMENTWISE):
        return passthrough if opdef.arity_range == (1, 1) else broadcast
    if opdef.layout is not None and opdef.layout.in_axis is not None:
        return layers.weighted
    return None

"""Rules for data movement: index arrays move with the data.

reshape merges and splits dims (context.merge/split: flatten into linear, head reshapes),
permute reorders them, concat concatenates the arrays (offsets), split and slice cut them,
expand and tile repeat them (expanded copies may be pruned). Dims that are padded, gathered or strided-sliced are kept whole.
"""
from __future__ import annotations

import numpy as np

from compiler.ir import Node
from passes.prune.context import ChannelState, merge, norm_dim, opaque, split


def reshape(cx: ChannelState, node: Node) -> None:
    x, out = node.inputs[0], node.output
    dims = cx.dims(x)
    if 0 in x.shape:
        return opaque(cx, node)
    result: list[np.ndarray | None] = [None] * out.rank
    for i, n in enumerate(x.shape):
        if n == 1:  # squeezed away: its single index must stay
            cx.classes.pin_all(dims[i], "squeezed dim")
    for ins, outs in reshape_groups(x.shape, out.shape):
        if len(ins) == 1 and len(outs) == 1:
            result[outs[0]] = dims[ins[0]]
            continue
        flat = merge(cx, [dims[i] for i in ins], [x.shape[i] for i in ins])
        for j, ids in zip(outs, split(cx, flat, [out.shape[j] for j in outs])):
            result[j] = ids
    cx.set(out, result)


def reshape_groups(a: tuple[int, ...], b: tuple[int, ...]) -> list[tuple[list[int], list[int]]]:
    """Pair runs of non-1 dims of `a` and `b` with equal products (a reshape's dim mapping)."""
    ia = [i for i, n in enumerate(a) if n != 1]
    ib = [i for i, n in enumerate(b) if n != 1]
    groups, i, j = [], 0, 0
    while i < len(ia) and j < len(ib):
        ga, gb = [ia[i]], [ib[j]]
        pa, pb = a[ia[i]], b[ib[j]]
        i, j = i + 1, j + 1
        while pa != pb:
            if pa < pb:
                ga.append(ia[i])
                pa *= a[ia[i]]
                i += 1
            else:
                gb.append(ib[j])
                pb *= b[ib[j]]
                j += 1
        groups.append((ga, gb))
    return groups


def permute(cx: ChannelState, node: Node) -> None:
    dims = cx.dims(node.inputs[0])
    cx.set(node.output, [dims[d % len(dims)] for d in node.attrs["dims"]])


def expand(cx: ChannelState, node: Node) -> None:
    """A broadcast dim holds copies: any of them may go (the target shape is rewritten), so it
    gets fresh classes; this is what lets query heads that share one kv head be pruned."""
    x, out = node.inputs[0], node.output
    dims = cx.dims(x)
    lead = out.rank - x.rank
    result = [None] * lead
    for i, ids in enumerate(dims):
        n = out.shape[lead + i]
        if x.shape[i] == n:
            result.append(ids)
        else:
            cx.classes.pin_all(ids, "broadcast")
            result.append(cx.classes.fresh(n))
    cx.set(out, result)


def tile(cx: ChannelState, node: Node) -> None:
    dims = cx.dims(node.inputs[0])
    cx.set(node.output, [ids if ids is None or r == 1 else np.tile(ids, r)
                         for ids, r in zip(dims, node.attrs["repeats"])])


def concat(cx: ChannelState, node: Node) -> None:
    xs, out = node.inputs, node.output
    d = norm_dim(node.attrs["dim"], out.rank)
    result = []
    for i in range(out.rank):
        if i == d:
            parts = [cx.dims(v)[d] for v in xs]
            result.append(None if all(p is None for p in parts) else np.concatenate(
                [p if p is not None else np.full(v.shape[d], -1, dtype=np.int64) for p, v in zip(parts, xs)]))
        else:
            result.append(cx.join([(v, i) for v in xs], out.shape[i]))
    cx.set(out, result)


def split_op(cx: ChannelState, node: Node) -> None:
    x = node.inputs[0]
    dims = cx.dims(x)
    d = norm_dim(node.attrs["dim"], x.rank)
    offset = 0
    for out, size in zip(node.outputs, node.attrs["sizes"]):
        ids = dims[d]
        cx.set(out, dims[:d] + [None if ids is None else ids[offset:offset + size]] + dims[d + 1:])
        offset += size


def slice_op(cx: ChannelState, node: Node) -> None:
    x = node.inputs[0]
    dims = cx.dims(x)
    a = node.attrs
    d, ids = a["dim"], dims[a["dim"]]
    if ids is not None and a["step"] != 1:
        cx.classes.pin_all(ids, f"strided slice ({node.name})")
    part = None if ids is None else ids[a["start"]:a["end"]:a["step"]]
    cx.set(node.output, dims[:d] + [part] + dims[d + 1:])


def pad(cx: ChannelState, node: Node) -> None:
    x = node.inputs[0]
    dims = cx.dims(x)
    pads = node.attrs["pads"]
    out = list(dims)
    for i in range(len(pads) // 2):
        d = x.rank - 1 - i
        if pads[2 * i] or pads[2 * i + 1]:
            cx.classes.pin_all(dims[d], f"padded dim ({node.name})")
            out[d] = None
    cx.set(node.output, out)


def gather(cx: ChannelState, node: Node) -> None:
    x, idx = node.inputs
    dims = cx.dims(x)
    d = node.attrs["dim"]
    cx.classes.pin_all(dims[d], f"gathered dim ({node.name})")
    cx.set(node.output, dims[:d] + cx.dims(idx) + dims[d + 1:])

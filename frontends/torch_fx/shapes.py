"""Data-movement rules shared by functions and methods: reshape-likes, permute, concat/stack,
split/chunk/unbind, narrow, expand, repeat, casts, reductions with indices.

Reshape-likes (view, flatten, squeeze, unsqueeze, unflatten) all become `reshape` to the static
shape torch produced. Whatever turns out to be an identity (a reshape that keeps the shape, a
full slice, a one-piece split) emits nothing: `FxNodeContext.emit` asks the identity rules first.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from compiler.ir import TensorType, Value
from frontends.torch_fx import lowering
from frontends.torch_fx.context import FxNodeContext


class Unusable:
    """A translation slot that must not be consumed, e.g. the indices of torch.max(x, dim)."""

    def __init__(self, reason: str):
        self.reason = reason


def to_result_shape(cx: FxNodeContext, x: Any, *args: Any, **kwargs: Any) -> Value:
    return cx.reshape_to_result(cx.tensor(x))


def identity(cx: FxNodeContext, x: Any, *args: Any, **kwargs: Any) -> Value:
    return cx.tensor(x)


def permute(cx: FxNodeContext, x: Any, dims: Sequence[int]) -> Value:
    x = cx.tensor(x)
    dims = tuple(lowering.norm_dim(cx, int(d), x.type.rank) for d in dims)
    if sorted(dims) != list(range(x.type.rank)):
        raise cx.error(f"{cx.what()}: {list(dims)} is not a permutation of {x.type.rank} dims")
    return cx.emit("permute", [x], {"dims": dims})


def transpose(cx: FxNodeContext, x: Any, dim0: int, dim1: int) -> Value:
    x = cx.tensor(x)
    dims = list(range(x.type.rank))
    a, b = lowering.norm_dim(cx, dim0, x.type.rank), lowering.norm_dim(cx, dim1, x.type.rank)
    dims[a], dims[b] = dims[b], dims[a]
    return permute(cx, x, dims)


def t(cx: FxNodeContext, x: Any) -> Value:
    x = cx.tensor(x)
    return x if x.type.rank < 2 else transpose(cx, x, 0, 1)


def concat(cx: FxNodeContext, tensors: Sequence[Any], dim: int = 0) -> Value:
    xs = [cx.tensor(v, "each concatenated value") for v in tensors]
    return cx.emit("concat", xs, {"dim": lowering.norm_dim(cx, dim, xs[0].type.rank)})


def stack(cx: FxNodeContext, tensors: Sequence[Any], dim: int = 0) -> Value:
    """Unsqueeze each input (a reshape) at dim, then concat."""
    xs = [cx.tensor(v, "each stacked value") for v in tensors]
    d = lowering.norm_dim(cx, dim, xs[0].type.rank + 1)
    parts = [cx.reshape(x, x.shape[:d] + (1,) + x.shape[d:], suffix=f"unsqueeze{i}") for i, x in enumerate(xs)]
    return cx.emit("concat", parts, {"dim": d})


def split(cx: FxNodeContext, x: Any, sizes: Any = None, dim: int = 0, *, split_size_or_sections: Any = None,
          split_size: Any = None, chunks: Any = None) -> tuple[Value, ...]:
    """torch.split / chunk: the piece sizes come from the recorded results."""
    x = cx.tensor(x)
    d = lowering.norm_dim(cx, dim, x.type.rank)
    outs = list(cx.out)
    sizes = tuple(o.shape[d] for o in outs)
    return tuple(cx.emit_multi("split", [x], {"sizes": sizes, "dim": d}, outs))


def unbind(cx: FxNodeContext, x: Any, dim: int = 0) -> tuple[Value, ...]:
    x = cx.tensor(x)
    d = lowering.norm_dim(cx, dim, x.type.rank)
    keep = x.shape[:d] + (1,) + x.shape[d + 1:]
    pieces = cx.emit_multi("split", [x], {"sizes": (1,) * x.shape[d], "dim": d},
                           [TensorType(keep, x.dtype)] * x.shape[d], suffix="split")
    return tuple(cx.reshape(p, o.shape, suffix=f"{i}") for i, (p, o) in enumerate(zip(pieces, cx.out)))


def slice_dim(cx: FxNodeContext, x: Value, dim: int, start: int, end: int, step: int = 1, *, suffix: str = "") -> Value:
    """x[start:end:step] along dim with torch's clamping (a full slice emits nothing)."""
    size = x.shape[dim]
    start, end, step = slice(start, end, step).indices(size)
    end = max(end, start)
    shape = list(x.shape)
    shape[dim] = len(range(start, end, step))
    return cx.emit("slice", [x], {"dim": dim, "start": start, "end": end, "step": step}, suffix=suffix,
                   out=TensorType(tuple(shape), x.dtype))


def narrow(cx: FxNodeContext, x: Any, dim: int, start: int, length: int) -> Value:
    x = cx.tensor(x)
    d = lowering.norm_dim(cx, dim, x.type.rank)
    start = start + x.shape[d] if start < 0 else start
    return slice_dim(cx, x, d, start, start + length)


def expand(cx: FxNodeContext, x: Any, *args: Any, **kwargs: Any) -> Value:
    x = cx.tensor(x)
    return cx.emit("expand", [x], {"shape": cx.out_type().shape})


def repeat(cx: FxNodeContext, x: Any, *sizes: Any) -> Value:
    """x.repeat(r0, r1, ...) == reshape to [1, s0, 1, s1, ...], expand to [r0, s0, r1, s1, ...],
    reshape to [r0*s0, r1*s1, ...] (exact: every element is copied, none is computed)."""
    x = cx.tensor(x)
    reps = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else tuple(sizes)
    if len(reps) < x.type.rank:
        raise cx.error(f"{cx.what()}: {len(reps)} repeats for a tensor of rank {x.type.rank}")
    src = (1,) * (len(reps) - x.type.rank) + x.shape
    if all(r == 1 for r in reps):
        return cx.reshape(x, src)
    inter = tuple(v for s in src for v in (1, s))
    wide = tuple(v for r, s in zip(reps, src) for v in (r, s))
    y = cx.reshape(x, inter, suffix="interleave")
    y = cx.emit("expand", [y], {"shape": wide}, suffix="expand", out=TensorType(wide, x.dtype))
    return cx.reshape(y, cx.out_type().shape)


def cast_to_result(cx: FxNodeContext, x: Any, *args: Any, **kwargs: Any) -> Value:
    """to(dtype)/to(device)/to(other)/float()/half()/type_as(): a cast to the dtype torch produced
    (no node when the dtype is unchanged; devices are ignored)."""
    x = cx.tensor(x)
    return cx.cast(x, cx.out_type().dtype)


def max_min(cx: FxNodeContext, op: str, binary_op: str, x: Any, dim: Any = None, keepdim: bool = False,
            other: Any = None) -> Any:
    """torch.max / min: full reduction, (values, indices) along a dim, or elementwise with a tensor."""
    if isinstance(dim, Value) or other is not None:
        return lowering.binary(cx, binary_op, x, other if other is not None else dim)
    if dim is None:
        return lowering.reduce(cx, op, x, None, False)
    x = cx.tensor(x)
    values_type = cx.out[0]
    values = cx.emit(op, [x], {"dims": (lowering.norm_dim(cx, dim, x.type.rank),), "keepdim": bool(keepdim)},
                     out=values_type)
    indices = Unusable(f"the indices returned by {cx.what()} (argmax/argmin) are not supported")
    return torch.return_types.max((values, indices)) if op == "reduce_max" else torch.return_types.min((values, indices))

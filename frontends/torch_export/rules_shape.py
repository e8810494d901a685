"""ATen data movement -> IR: views become one static `reshape`, slices `slice`, and so on.

The torch.fx frontend's data-movement helpers (frontends/torch_fx/shapes.py) do the work; this
table binds them to the ATen schemas.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from compiler.ir import Value
from frontends.torch_fx import lowering, shapes
from frontends.torch_fx.context import FxNodeContext

aten = torch.ops.aten


def slice_(cx: FxNodeContext, x: Any, dim: int = 0, start: Any = None, end: Any = None, step: int = 1) -> Value:
    x = cx.tensor(x)
    d = lowering.norm_dim(cx, dim, x.rank)  # an end past the size (ATen uses INT64_MAX) clamps
    return shapes.slice_dim(cx, x, d, 0 if start is None else start, end, step)


def select(cx: FxNodeContext, x: Any, dim: int, index: int) -> Value:
    x = cx.tensor(x)
    d = lowering.norm_dim(cx, dim, x.rank)
    i = index + x.shape[d] if index < 0 else index
    return cx.reshape_to_result(shapes.slice_dim(cx, x, d, i, i + 1, suffix="slice"))


def concat(cx: FxNodeContext, tensors: Sequence[Any], dim: int = 0) -> Value:
    # legacy torch.cat skips 1-d empty tensors; so does the result shape
    return shapes.concat(cx, [t for t in tensors if not (tuple(t.shape) == (0,))], dim)


def split(cx: FxNodeContext, x: Any, sizes: Any, dim: int = 0) -> tuple[Value, ...]:
    return shapes.split(cx, x, sizes, dim)


def pad(cx: FxNodeContext, x: Any, pad: Sequence[int], mode: str = "constant", value: Any = None) -> Value:
    return lowering.pad(cx, cx.tensor(x), pad, mode, value)


def constant_pad_nd(cx: FxNodeContext, x: Any, pad: Sequence[int], value: Any = 0) -> Value:
    return lowering.pad(cx, cx.tensor(x), pad, "constant", value)


def repeat(cx: FxNodeContext, x: Any, repeats: Sequence[int]) -> Value:
    return shapes.repeat(cx, x, tuple(repeats))


def index_select(cx: FxNodeContext, x: Any, dim: int, index: Any) -> Value:
    x = cx.tensor(x)
    return cx.emit("gather", [x, cx.tensor(index, "index")], {"dim": lowering.norm_dim(cx, dim, x.rank)})


RESHAPES = (aten.view, aten._unsafe_view, aten.reshape, aten.unsqueeze, aten.squeeze, aten.flatten,
            aten.unflatten, aten.view_copy, aten.squeeze_copy, aten.unsqueeze_copy, aten._reshape_alias)

RULES: dict[Any, Callable] = {
    **{op: shapes.to_result_shape for op in RESHAPES},
    aten.permute: lambda cx, x, dims: shapes.permute(cx, x, dims), aten.transpose: shapes.transpose, aten.t: shapes.t,
    aten.expand: shapes.expand, aten.slice: slice_, aten.select: select, aten.cat: concat,
    aten.stack: shapes.stack, aten.split: split, aten.split_with_sizes: split, aten.unbind: shapes.unbind,
    aten.chunk: lambda cx, x, chunks, dim=0: shapes.split(cx, x, None, dim),
    aten.narrow: shapes.narrow, aten.repeat: repeat, aten.index_select: index_select,
    aten.pad: pad, aten.constant_pad_nd: constant_pad_nd,
}

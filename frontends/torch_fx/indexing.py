"""`obj[index]` lowering.

On a tuple/list of translated values (split, chunk, unbind, max(dim)) it picks. On a tensor,
basic indexing with ints, slices, None and Ellipsis becomes one `slice` node per sliced dim
(normalized non-negative, in-range bounds; an int `i` is the slice i:i+1) followed by at most
one `reshape` to the result shape, which drops int-indexed dims and inserts None dims. Tensor
(advanced) indices, bool indices and negative steps are refused.
"""
from __future__ import annotations

from typing import Any

from compiler.ir import TensorType, Value
from frontends.torch_fx.context import FxNodeContext


def getitem(cx: FxNodeContext, obj: Any, index: Any) -> Any:
    if not isinstance(obj, Value):
        return obj[index]
    return tensor_getitem(cx, obj, index)


def tensor_getitem(cx: FxNodeContext, x: Value, index: Any) -> Value:
    items = list(index) if isinstance(index, tuple) else [index]
    for item in items:
        if isinstance(item, Value) or isinstance(item, (list, bool)) or (
                item is not None and item is not Ellipsis and not isinstance(item, (int, slice))):
            raise cx.error(f"indexing a tensor with {_kind(item)} is not supported (only ints, slices, "
                           "None and ...)", hint="advanced (tensor/bool/list) indexing has no static IR form")
    consumed = sum(1 for i in items if i is not None and i is not Ellipsis)
    if sum(1 for i in items if i is Ellipsis) > 1:
        raise cx.error(f"{cx.what()}: an index can only have a single ellipsis")
    if consumed > x.type.rank:
        raise cx.error(f"{cx.what()}: too many indices ({consumed}) for a tensor of rank {x.type.rank}")
    specs: list[tuple[int, int, int, int]] = []  # (dim, start, end, step) of each real slice
    shape = list(x.shape)
    dim = 0
    for item in items:
        if item is None:
            continue
        if item is Ellipsis:
            dim += x.type.rank - consumed
            continue
        size = x.shape[dim]
        if isinstance(item, int):
            i = item + size if item < 0 else item
            if not 0 <= i < size:
                raise cx.error(f"{cx.what()}: index {item} is out of range for dim {dim} of size {size}")
            start, end, step = i, i + 1, 1
        else:
            if not all(v is None or isinstance(v, int) for v in (item.start, item.stop, item.step)):
                raise cx.error(f"{cx.what()}: slice bounds must be static ints, got {item}")
            if item.step is not None and item.step <= 0:
                raise cx.error(f"{cx.what()}: slice step {item.step} is not supported (steps must be positive)")
            start, end, step = item.indices(size)
            end = max(end, start)
        if (start, end, step) != (0, size, 1):
            specs.append((dim, start, end, step))
            shape[dim] = len(range(start, end, step))
        dim += 1
    out = cx.out_type()
    reshape = tuple(shape) != out.shape
    for k, (d, start, end, step) in enumerate(specs):
        last = k == len(specs) - 1 and not reshape
        sliced = list(x.shape)
        sliced[d] = len(range(start, end, step))
        x = cx.emit("slice", [x], {"dim": d, "start": start, "end": end, "step": step},
                    suffix="" if last else f"d{d}", out=TensorType(tuple(sliced), x.dtype))
    return cx.reshape(x, out.shape)


def _kind(item: Any) -> str:
    if isinstance(item, Value):
        return f"a tensor (%{item.name})"
    return f"a {type(item).__name__} ({item!r})"

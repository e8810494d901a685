"""Advanced indexing (aten.index) and aten.gather -> one IR `gather` on a flattened view.

Torch indexes several dims at once (`x[i, j]`, the mask building of attention layers); the IR
gathers along one dim. Indexing dims d..d+k with index tensors i_0..i_k equals gathering the
merged dim at `sum(i_m * stride_m)` after a reshape that merges them, so the translation is a
reshape, one flat index, one gather. With static indices (built from shapes, the usual case) the
flat index is a constant computed here; a single data-dependent index needs no arithmetic at all.
Indices that are not next to each other move to the front first, as torch moves their result.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from compiler.ir import TensorType, Value
from frontends.torch_fx.context import FxNodeContext


def index(cx: FxNodeContext, x: Any, indices: Sequence[Any]) -> Value:
    x = cx.tensor(x)
    used = [d for d, i in enumerate(indices) if i is not None]
    if not used:
        return x
    idx = [_as_long(cx, indices[d], x.shape[d]) for d in used]
    if len(used) == 1:
        return cx.emit("gather", [x, cx.tensor(idx[0], "index")], {"dim": used[0]})
    if any(isinstance(i, Value) for i in idx):
        raise cx.error(f"{cx.what()} with several data-dependent index tensors is not supported",
                       hint="index one dim at a time, or build the indices from shapes")
    if used != list(range(used[0], used[0] + len(used))):  # torch puts the indexed dims first
        rest = [d for d in range(x.rank) if d not in used]
        x = cx.emit("permute", [x], {"dims": tuple(used + rest)}, suffix="front",
                    out=TensorType(tuple(x.shape[d] for d in used + rest), x.dtype))
        used = list(range(len(used)))
    first, sizes = used[0], [x.shape[d] for d in used]
    flat = torch.zeros((), dtype=torch.int64)
    for i, n in zip(idx, sizes):
        flat = flat * n + torch.where(i < 0, i + n, i)
    merged = x.shape[:first] + (int(torch.tensor(sizes).prod()),) + x.shape[first + len(used):]
    x = cx.reshape(x, merged, suffix="merged")
    return cx.emit("gather", [x, cx.tensor(flat.contiguous(), "index")], {"dim": first})


def gather(cx: FxNodeContext, x: Any, dim: int, index: Any, sparse_grad: bool = False) -> Value:
    """out[p] = x[p with its `dim` coordinate replaced by index[p]]: a flat gather when the
    index is static (position and token-type ids); data-dependent indices are refused."""
    x = cx.tensor(x)
    if not isinstance(index, torch.Tensor):
        raise cx.error(f"{cx.what()} with a data-dependent index is not supported",
                       hint="aten.gather needs an index built from shapes (static)")
    d = dim % max(x.rank, 1)
    coords = torch.meshgrid(*[torch.arange(n) for n in index.shape], indexing="ij")
    strides = torch.tensor(x.shape).flip(0).cumprod(0).flip(0).tolist()[1:] + [1]
    flat = torch.zeros(index.shape, dtype=torch.int64)
    for axis, (c, stride) in enumerate(zip(coords, strides)):
        pos = torch.where(index < 0, index + x.shape[d], index) if axis == d else c
        flat = flat + pos.to(torch.int64) * stride
    x = cx.reshape(x, (x.type.numel,), suffix="flat")
    return cx.emit("gather", [x, cx.tensor(flat, "index")], {"dim": 0})


def _as_long(cx: FxNodeContext, i: Any, size: int) -> Any:
    """An index operand: bool masks (static only) become the positions they select."""
    if isinstance(i, torch.Tensor) and i.dtype == torch.bool:
        if i.dim() != 1:
            raise cx.error(f"{cx.what()} with a {i.dim()}-d boolean mask is not supported")
        return i.nonzero().reshape(-1)
    if isinstance(i, Value) and i.dtype == torch.bool:
        raise cx.error(f"{cx.what()} with a data-dependent boolean mask gives a data-dependent shape",
                       hint="use torch.where(mask, x, fill) to keep shapes static")
    return i

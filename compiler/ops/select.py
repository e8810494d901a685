"""Selection ops: gather along a dim, tile, top-k and arg-max/min."""
from __future__ import annotations

import operator

import torch

from compiler.ir import TensorType
from compiler.ops.interfaces import Trait
from compiler.ops.registry import Attr, OpDef, normalize_dim, raise_shape, register_op

_INDEX_DTYPES = (torch.int64, torch.int32)


def _gather_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    x, idx = ins
    if idx.dtype not in _INDEX_DTYPES:
        raise_shape("gather", ins, f"indices must be int64 or int32, got {idx.dtype}")
    if not 0 <= a["dim"] < x.rank:
        raise_shape("gather", ins, f"dim {a['dim']} must be in [0, {x.rank})")
    d = a["dim"]
    return [TensorType(x.shape[:d] + idx.shape + x.shape[d + 1:], x.dtype)]


def gather_index(dim: int, idx) -> tuple:
    """The getitem index `x[:, ..., idx]` that gathers along `dim` (numpy advanced indexing)."""
    return (slice(None),) * dim + (idx,)


register_op(OpDef(
    name="gather", inputs=("x", "indices"), category="shape", attrs={"dim": Attr("int")},
    torch_call=lambda i, a: (operator.getitem, (i[0], gather_index(a["dim"], i[1])), {}),
    infer_fn=_gather_infer, traits=Trait.SHAPE_ONLY,
    doc="Take entries along dim (0 <= dim < rank) at integer indices of any shape (negative ones "
        "count from the end); "
        "the result's shape is x.shape[:dim] + indices.shape + x.shape[dim+1:] (ONNX Gather)."))


def _tile_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    x, reps = ins[0], a["repeats"]
    if len(reps) != x.rank or any(r < 0 for r in reps):
        raise_shape("tile", ins, f"repeats {list(reps)} need one non-negative entry per dim")
    return [TensorType(tuple(n * r for n, r in zip(x.shape, reps)), x.dtype)]


register_op(OpDef(
    name="tile", inputs=("x",), category="shape", attrs={"repeats": Attr("ints")},
    torch_call=lambda i, a: (torch.tile, (i[0], a["repeats"]), {}),
    infer_fn=_tile_infer, traits=Trait.SHAPE_ONLY,
    doc="Repeat the whole tensor repeats[d] times along each dim d (one entry per dim)."))


def _topk_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    x = ins[0]
    if x.rank == 0:
        raise_shape("topk", ins, "needs at least one dim")
    d = normalize_dim("topk", ins, a["dim"], x.rank)
    if not 0 <= a["k"] <= x.shape[d]:
        raise_shape("topk", ins, f"k={a['k']} is out of range for dim {d}")
    shape = x.shape[:d] + (a["k"],) + x.shape[d + 1:]
    return [TensorType(shape, x.dtype), TensorType(shape, torch.int64)]


register_op(OpDef(
    name="topk", inputs=("x",), category="reduce",
    attrs={"k": Attr("int"), "dim": Attr("int", -1), "largest": Attr("bool", True)},
    torch_call=lambda i, a: (torch.topk, (i[0], a["k"]),
                             {"dim": a["dim"], "largest": a["largest"], "sorted": True}),
    num_outputs=lambda a: 2,
    infer_fn=_topk_infer,
    doc="The k largest (or smallest) entries along dim, sorted, and their int64 indices."))


def _arg_infer(op: str):
    def infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
        x = ins[0]
        d = normalize_dim(op, ins, a["dim"], x.rank)
        if x.rank and x.shape[d] == 0:
            raise_shape(op, ins, f"dim {d} is empty")
        if not x.rank:
            shape = ()
        elif a["keepdim"]:
            shape = x.shape[:d] + (1,) + x.shape[d + 1:]
        else:
            shape = x.shape[:d] + x.shape[d + 1:]
        return [TensorType(shape, torch.int64)]
    return infer


def _arg(name: str, fn, doc: str) -> None:
    register_op(OpDef(
        name=name, inputs=("x",), category="reduce",
        attrs={"dim": Attr("int"), "keepdim": Attr("bool", False)},
        torch_call=lambda i, a: (fn, (i[0],), {"dim": a["dim"], "keepdim": a["keepdim"]}),
        infer_fn=_arg_infer(name), doc=doc))


_arg("argmax", torch.argmax, "int64 index of the largest entry along dim (the first one on ties)")
_arg("argmin", torch.argmin, "int64 index of the smallest entry along dim (the first one on ties)")

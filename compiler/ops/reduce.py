"""Reductions over a set of dims."""
from __future__ import annotations

import torch

from compiler.ir import TensorType
from compiler.ops.registry import Attr, OpDef, normalize_dim, raise_shape, register_op


def _reduce_infer(op: str):
    def infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
        x = ins[0]
        # like torch, an empty dims list reduces over every dim
        dims = {normalize_dim(op, ins, d, x.rank) for d in a["dims"]} or set(range(x.rank))
        if len(dims) != len(a["dims"]):
            raise_shape(op, ins, f"dims {list(a['dims'])} repeat a dim")
        if a["keepdim"]:
            shape = tuple(1 if i in dims else n for i, n in enumerate(x.shape))
        else:
            shape = tuple(n for i, n in enumerate(x.shape) if i not in dims)
        dtype = torch.int64 if op == "reduce_sum" and not x.dtype.is_floating_point else x.dtype
        if op == "reduce_mean" and not x.dtype.is_floating_point:
            raise_shape(op, ins, "mean needs a floating-point input")
        return [TensorType(shape, dtype)]
    return infer


def _reduce(name: str, fn, doc: str) -> None:
    register_op(OpDef(
        name=name, inputs=("x",), category="reduce",
        attrs={"dims": Attr("ints"), "keepdim": Attr("bool", False)},
        torch_call=lambda i, a: (fn, (i[0],), {"dim": a["dims"], "keepdim": a["keepdim"]}),
        infer_fn=_reduce_infer(name), doc=doc))


_reduce("reduce_mean", torch.mean, "mean over dims")
_reduce("reduce_sum", torch.sum, "sum over dims")
_reduce("reduce_max", torch.amax, "max over dims")
_reduce("reduce_min", torch.amin, "min over dims")


def _cumsum_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    x = ins[0]
    normalize_dim("cumsum", ins, a["dim"], x.rank)
    return [TensorType(x.shape, x.dtype if x.dtype.is_floating_point else torch.int64)]


register_op(OpDef(
    name="cumsum", inputs=("x",), category="reduce", attrs={"dim": Attr("int")},
    torch_call=lambda i, a: (torch.cumsum, (i[0],), {"dim": a["dim"]}),
    infer_fn=_cumsum_infer,
    doc="Running sum along dim; integer and bool inputs sum in int64 (position ids from masks)."))

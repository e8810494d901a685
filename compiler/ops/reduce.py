"""Reductions over a set of dims."""
from __future__ import annotations

import torch

from compiler.ops.registry import Attr, OpDef, register_op


def _reduce(name: str, fn, doc: str) -> None:
    register_op(OpDef(
        name=name, inputs=("x",), category="reduce",
        attrs={"dims": Attr("ints"), "keepdim": Attr("bool", False)},
        torch_call=lambda i, a: (fn, (i[0],), {"dim": a["dims"], "keepdim": a["keepdim"]}),
        doc=doc))


_reduce("reduce_mean", torch.mean, "mean over dims")
_reduce("reduce_sum", torch.sum, "sum over dims")
_reduce("reduce_max", torch.amax, "max over dims")
_reduce("reduce_min", torch.amin, "min over dims")

"""More elementwise ops: rounding, reciprocal and PReLU."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from compiler.ir import TensorType
from compiler.ops.interfaces import Trait
from compiler.ops.registry import OpDef, raise_shape, register_op


def _float_only(op: str):
    def infer(ins: list[TensorType | None], attrs: dict) -> list[TensorType]:
        if not ins[0].dtype.is_floating_point:
            raise_shape(op, ins, f"needs a floating-point input, got {ins[0].dtype}")
        return [ins[0]]
    return infer


def _rounding(name: str, fn, doc: str) -> None:
    register_op(OpDef(
        name=name, inputs=("x",), category="activation",
        torch_call=lambda i, a: (fn, (i[0],), {}),
        infer_fn=_float_only(name), doc=doc, traits=Trait.ELEMENTWISE | Trait.CHANNEL_PRESERVING))


_rounding("floor", torch.floor, "largest integer <= x (floating-point inputs)")
_rounding("ceil", torch.ceil, "smallest integer >= x (floating-point inputs)")
_rounding("round", torch.round, "round half to even (floating-point inputs)")
_rounding("reciprocal", torch.reciprocal, "1 / x (floating-point inputs)")


def _prelu_infer(ins: list[TensorType | None], attrs: dict) -> list[TensorType]:
    x, w = ins
    channels = x.shape[1] if x.rank >= 2 else 1
    if w.rank != 1 or w.shape[0] not in (1, channels) or w.dtype != x.dtype or not x.dtype.is_floating_point:
        raise_shape("prelu", ins, f"the slope must be a float vector of 1 or {channels} (channel) entries")
    return [x]


register_op(OpDef(
    name="prelu", inputs=("x", "weight"), category="activation",
    torch_call=lambda i, a: (F.prelu, (i[0], i[1]), {}),
    infer_fn=_prelu_infer, traits=Trait.ELEMENTWISE | Trait.CHANNEL_PRESERVING,
    doc="x if x >= 0 else weight * x; weight has 1 entry or one per channel (dim 1)."))

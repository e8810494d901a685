"""Comparisons, logical ops and `where`: elementwise with numpy broadcasting, bool results.

Frontends need them for masks and for the index arithmetic exporters leave in graphs
(ONNX Equal/Less/Where/Not...). Inputs of different dtypes are compared in torch's promoted type.
"""
from __future__ import annotations

import torch

from compiler.ir import TensorType
from compiler.ops.interfaces import Trait
from compiler.ops.registry import OpDef, raise_shape, register_op


def _broadcast(op: str, ins: list[TensorType | None]) -> tuple[int, ...]:
    try:
        return tuple(torch.broadcast_shapes(*(t.shape for t in ins)))
    except RuntimeError:
        raise_shape(op, ins, "shapes do not broadcast")


def _predicate_infer(op: str):
    def infer(ins: list[TensorType | None], attrs: dict) -> list[TensorType]:
        return [TensorType(_broadcast(op, ins), torch.bool)]
    return infer


def _where_infer(ins: list[TensorType | None], attrs: dict) -> list[TensorType]:
    cond, a, b = ins
    if cond.dtype != torch.bool:
        raise_shape("where", ins, f"the condition must be bool, got {cond.dtype}")
    dtype = torch.result_type(torch.empty((), dtype=a.dtype, device="meta"),
                              torch.empty((), dtype=b.dtype, device="meta"))
    return [TensorType(_broadcast("where", ins), dtype)]


def _predicate(name: str, fn, inputs: tuple[str, ...], doc: str, commutative: bool = True) -> None:
    register_op(OpDef(
        name=name, inputs=inputs, category="logic",
        torch_call=lambda i, a: (fn, tuple(i), {}),
        infer_fn=_predicate_infer(name), doc=doc,
        traits=Trait.ELEMENTWISE | (Trait.COMMUTATIVE if commutative and len(inputs) == 2 else Trait.NONE)))


_predicate("equal", torch.eq, ("a", "b"), "a == b (bool result)")
_predicate("less", torch.lt, ("a", "b"), "a < b (bool result)", commutative=False)
_predicate("greater", torch.gt, ("a", "b"), "a > b (bool result)", commutative=False)
_predicate("less_equal", torch.le, ("a", "b"), "a <= b (bool result)", commutative=False)
_predicate("greater_equal", torch.ge, ("a", "b"), "a >= b (bool result)", commutative=False)
_predicate("logical_and", torch.logical_and, ("a", "b"), "a and b (nonzero is true; bool result)")
_predicate("logical_or", torch.logical_or, ("a", "b"), "a or b (nonzero is true; bool result)")
_predicate("logical_xor", torch.logical_xor, ("a", "b"), "a xor b (nonzero is true; bool result)")
_predicate("logical_not", torch.logical_not, ("x",), "not x (nonzero is true; bool result)")

register_op(OpDef(
    name="where", inputs=("cond", "a", "b"), category="logic",
    torch_call=lambda i, a: (torch.where, (i[0], i[1], i[2]), {}),
    infer_fn=_where_infer, traits=Trait.ELEMENTWISE,
    doc="a where cond else b, broadcast; a and b promote to a common dtype (torch.where)."))

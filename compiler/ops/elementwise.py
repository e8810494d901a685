"""Elementwise binary ops with numpy broadcasting and torch type promotion."""
from __future__ import annotations

import torch

from compiler.ir import TensorType
from compiler.ops.interfaces import Trait
from compiler.ops.registry import Attr, OpDef, register_op


def _broadcast_infer(ins: list[TensorType | None], attrs: dict) -> list[TensorType]:
    from compiler.errors import IRError
    a, b = ins
    try:
        shape = tuple(torch.broadcast_shapes(a.shape, b.shape))
    except RuntimeError:
        raise IRError(f"shapes {list(a.shape)} and {list(b.shape)} do not broadcast") from None
    dtype = torch.result_type(torch.empty(a.shape, dtype=a.dtype, device="meta"),
                              torch.empty(b.shape, dtype=b.dtype, device="meta"))
    return [TensorType(shape, dtype)]


def _div_infer(ins: list[TensorType | None], attrs: dict) -> list[TensorType]:
    """True division of integers gives float32; floor and trunc division keep the type."""
    (out,) = _broadcast_infer(ins, attrs)
    if attrs["rounding_mode"] is None and not out.dtype.is_floating_point:
        out = TensorType(out.shape, torch.float32)
    return [out]


def _binary(name: str, fn, doc: str, infer=_broadcast_infer, commutative: bool = False, **attrs: Attr) -> None:
    names = list(attrs)
    register_op(OpDef(
        name=name, inputs=("a", "b"), category="elementwise", attrs=dict(attrs),
        torch_call=lambda i, a: (fn, (i[0], i[1]), {k: a[k] for k in names}),
        infer_fn=infer, doc=doc,
        traits=Trait.ELEMENTWISE | (Trait.COMMUTATIVE if commutative else Trait.NONE)))


_binary("add", torch.add, "a + b", commutative=True)
_binary("sub", torch.sub, "a - b")
_binary("mul", torch.mul, "a * b", commutative=True)
_binary("div", torch.div, "a / b (rounding_mode trunc or floor for integer-style division)", infer=_div_infer,
        rounding_mode=Attr("str?", None, choices=(None, "trunc", "floor")))
_binary("pow", torch.pow, "a ** b")
_binary("maximum", torch.maximum, "elementwise max(a, b)", commutative=True)
_binary("minimum", torch.minimum, "elementwise min(a, b)", commutative=True)

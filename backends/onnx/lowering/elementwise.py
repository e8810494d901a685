"""Binary and ternary elementwise ops: arithmetic, division, comparisons, logical ops, where."""
from __future__ import annotations

import torch

from backends.onnx.builder import OnnxBuilder, onnx_dtype
from backends.onnx.lowering.registry import lowering
from compiler.ir import Node


_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "pow": "Pow", "maximum": "Max", "minimum": "Min"}


@lowering(*_BINARY)
def binary(b: OnnxBuilder, node: Node) -> None:
    """Inputs are cast to the promoted result dtype first: that is what torch computes in."""
    dtype = node.outputs[0].dtype
    if dtype == torch.bool:
        raise b.error(f"'{node.op}' on bool tensors has no ONNX arithmetic equivalent",
                      hint="cast to an integer dtype first")
    b.emit(_BINARY[node.op], [b.x_as(node, 0, dtype), b.x_as(node, 1, dtype)], [b.y(node)])


@lowering("div")
def div(b: OnnxBuilder, node: Node) -> None:
    dtype, mode = node.outputs[0].dtype, node.attrs["rounding_mode"]
    x, y = b.x_as(node, 0, dtype), b.x_as(node, 1, dtype)
    if mode is None:
        b.emit("Div", [x, y], [b.y(node)])
    elif dtype == torch.bool:
        raise b.error("integer division of bool tensors")
    elif not dtype.is_floating_point:
        _int_div(b, x, y, dtype, mode, b.y(node))
    elif mode == "trunc":  # trunc(x / y)
        q = b.emit("Div", [x, y])
        negative = b.emit("Less", [q, b.scalar(0, dtype, "zero")])
        b.emit("Where", [negative, b.emit("Ceil", [q]), b.emit("Floor", [q])], [b.y(node)])
    else:
        _float_floor_div(b, x, y, dtype, b.y(node))


def _int_div(b: OnnxBuilder, x: str, y: str, dtype: torch.dtype, mode: str, out: str) -> None:
    """ONNX integer Div truncates; floor mode steps down when the remainder's sign differs."""
    if mode == "trunc":
        b.emit("Div", [x, y], [out])
        return
    q = b.emit("Div", [x, y])
    r = b.emit("Sub", [x, b.emit("Mul", [q, y])])
    zero = b.scalar(0, dtype, "zero")
    signs_differ = b.emit("Xor", [b.emit("Less", [r, zero]), b.emit("Less", [y, zero])])
    adjust = b.emit("And", [b.emit("Not", [b.emit("Equal", [r, zero])]), signs_differ])
    b.emit("Sub", [q, b.emit("Cast", [adjust], to=onnx_dtype(dtype))], [out])


def _float_floor_div(b: OnnxBuilder, x: str, y: str, dtype: torch.dtype, out: str) -> None:
    """torch's div_floor_floating, step by step (not floor(x / y), which rounds differently)."""
    zero, one, half = (b.scalar(v, dtype, t) for v, t in ((0, "zero"), (1, "one"), (0.5, "half")))
    mod = b.emit("Mod", [x, y], fmod=1)
    div = b.emit("Div", [b.emit("Sub", [x, mod]), y])
    signs_differ = b.emit("Xor", [b.emit("Less", [y, zero]), b.emit("Less", [mod, zero])])
    step_down = b.emit("And", [b.emit("Not", [b.emit("Equal", [mod, zero])]), signs_differ])
    div = b.emit("Where", [step_down, b.emit("Sub", [div, one]), div])
    floor = b.emit("Floor", [div])
    floor = b.emit("Where", [b.emit("Greater", [b.emit("Sub", [div, floor]), half]),
                             b.emit("Add", [floor, one]), floor])
    # div == 0 keeps the sign of x / y; y == 0 gives the IEEE quotient
    true_div = b.emit("Div", [x, y])
    floor = b.emit("Where", [b.emit("Equal", [div, zero]), b.emit("Mul", [true_div, zero]), floor])
    b.emit("Where", [b.emit("Equal", [y, zero]), true_div, floor], [out])


def _common_dtype(node: Node, indices: tuple[int, ...]) -> torch.dtype:
    metas = [torch.empty((), dtype=node.inputs[i].dtype, device="meta") for i in indices]
    return torch.result_type(*metas) if len(metas) == 2 else metas[0].dtype


_COMPARE = {"equal": "Equal", "less": "Less", "greater": "Greater", "less_equal": "LessOrEqual",
            "greater_equal": "GreaterOrEqual"}


@lowering(*_COMPARE)
def compare(b: OnnxBuilder, node: Node) -> None:
    """Both sides in torch's promoted dtype; bools order as 0/1 (ONNX Less has no bool kernel)."""
    dtype = _common_dtype(node, (0, 1))
    if dtype == torch.bool and node.op != "equal":
        dtype = torch.int32
    b.emit(_COMPARE[node.op], [b.x_as(node, 0, dtype), b.x_as(node, 1, dtype)], [b.y(node)])


_LOGICAL = {"logical_and": "And", "logical_or": "Or", "logical_xor": "Xor", "logical_not": "Not"}


@lowering(*_LOGICAL)
def logical(b: OnnxBuilder, node: Node) -> None:
    """Nonzero is true: non-bool inputs are cast to bool first."""
    ins = [b.x_as(node, i, torch.bool) for i in range(len(node.inputs))]
    b.emit(_LOGICAL[node.op], ins, [b.y(node)])


@lowering("where")
def where(b: OnnxBuilder, node: Node) -> None:
    dtype = node.outputs[0].dtype
    b.emit("Where", [b.x(node, 0), b.x_as(node, 1, dtype), b.x_as(node, 2, dtype)], [b.y(node)])

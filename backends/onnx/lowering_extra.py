"""ONNX lowerings of the ops the ONNX frontend added: comparisons, logical ops, where, rounding,
reciprocal, prelu, gather, tile, topk, argmax/argmin. Imported by `lowering.py` into LOWERINGS."""
from __future__ import annotations

import torch

from backends.onnx.builder import OnnxBuilder, onnx_dtype
from backends.onnx.lowering import lowering
from compiler.ir import Node


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


_ROUNDING = {"floor": "Floor", "ceil": "Ceil", "round": "Round", "reciprocal": "Reciprocal"}


@lowering(*_ROUNDING)
def rounding(b: OnnxBuilder, node: Node) -> None:
    b.emit(_ROUNDING[node.op], [b.x(node)], [b.y(node)])


@lowering("prelu")
def prelu(b: OnnxBuilder, node: Node) -> None:
    """ONNX PRelu broadcasts the slope from the right: a per-channel slope becomes [C, 1, ...]."""
    x, w = node.inputs
    if w.shape[0] > 1 and len(x.shape) > 2:  # the reshaped slope replaces the IR weight, never both
        slope = b.reshaped(w, (w.shape[0],) + (1,) * (len(x.shape) - 2), "slope")
    else:
        slope = b.x(node, 1)
    b.emit("PRelu", [b.x(node), slope], [b.y(node)])


@lowering("gather")
def gather(b: OnnxBuilder, node: Node) -> None:
    b.emit("Gather", [b.x(node), b.x(node, 1)], [b.y(node)], axis=node.attrs["dim"])


@lowering("tile")
def tile(b: OnnxBuilder, node: Node) -> None:
    b.emit("Tile", [b.x(node), b.ints(node.attrs["repeats"], "repeats")], [b.y(node)])


@lowering("topk")
def topk(b: OnnxBuilder, node: Node) -> None:
    a = node.attrs
    b.emit("TopK", [b.x(node), b.ints([a["k"]], "k")], [v.name for v in node.outputs],
           axis=a["dim"], largest=int(a["largest"]), sorted=1)


@lowering("argmax", "argmin")
def arg_extreme(b: OnnxBuilder, node: Node) -> None:
    x = node.inputs[0]
    if not x.shape:  # the index into a scalar is 0
        b.emit("Cast", [b.scalar(0, torch.int64, "zero")], [b.y(node)], to=onnx_dtype(torch.int64))
        return
    op_type = "ArgMax" if node.op == "argmax" else "ArgMin"
    b.emit(op_type, [b.x(node)], [b.y(node)], axis=node.attrs["dim"], keepdims=int(node.attrs["keepdim"]))


@lowering("einsum")
def einsum(b: OnnxBuilder, node: Node) -> None:
    b.emit("Einsum", b.inputs(node), [b.y(node)], equation=node.attrs["equation"])

"""Reductions along dims: reduce_*, topk, argmax/argmin, cumsum."""
from __future__ import annotations

import torch

from backends.onnx.builder import OnnxBuilder, onnx_dtype
from backends.onnx.lowering.registry import lowering
from compiler.ir import Node


_REDUCE = {"reduce_mean": "ReduceMean", "reduce_sum": "ReduceSum", "reduce_max": "ReduceMax",
           "reduce_min": "ReduceMin"}


@lowering(*_REDUCE)
def reduce(b: OnnxBuilder, node: Node) -> None:
    x = b.x_as(node, 0, node.outputs[0].dtype)  # torch sums integers in int64
    b.reduce(_REDUCE[node.op], x, node.attrs["dims"], node.attrs["keepdim"], [b.y(node)])


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


@lowering("cumsum")
def cumsum(b: OnnxBuilder, node: Node) -> None:
    """Integers and bools accumulate in int64, as torch does."""
    x = b.x_as(node, 0, node.outputs[0].dtype)
    b.emit("CumSum", [x, b.scalar(node.attrs["dim"], torch.int64, "axis")], [b.y(node)])

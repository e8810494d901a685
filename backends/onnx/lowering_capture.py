"""ONNX lowerings of the ops the torch.export frontend added: sin, cos, cumsum.
Imported by `lowering.py` into LOWERINGS."""
from __future__ import annotations

import torch

from backends.onnx.builder import OnnxBuilder
from backends.onnx.lowering import lowering
from compiler.ir import Node


@lowering("sin", "cos")
def trig(b: OnnxBuilder, node: Node) -> None:
    """ONNX Sin/Cos take floats only: integer inputs are cast to the result dtype first."""
    x = b.x_as(node, 0, node.outputs[0].dtype)
    b.emit("Sin" if node.op == "sin" else "Cos", [x], [b.y(node)])


@lowering("cumsum")
def cumsum(b: OnnxBuilder, node: Node) -> None:
    """Integers and bools accumulate in int64, as torch does."""
    x = b.x_as(node, 0, node.outputs[0].dtype)
    b.emit("CumSum", [x, b.scalar(node.attrs["dim"], torch.int64, "axis")], [b.y(node)])

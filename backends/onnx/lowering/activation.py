"""Unary ops: one-to-one ONNX ops, activations, softmax, prelu, rounding, sin and cos."""
from __future__ import annotations

import math

from backends.onnx.builder import OnnxBuilder
from backends.onnx.lowering.registry import lowering, one_to_one
from compiler.ir import Node


_UNARY = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "exp": "Exp", "log": "Log",
          "sqrt": "Sqrt", "neg": "Neg", "abs": "Abs", "erf": "Erf", "hardswish": "HardSwish"}
for _op, _onnx_op in _UNARY.items():
    lowering(_op)(one_to_one(_onnx_op))


@lowering("rsqrt")
def rsqrt(b: OnnxBuilder, node: Node) -> None:
    b.emit("Reciprocal", [b.emit("Sqrt", [b.x(node)])], [b.y(node)])


@lowering("silu")
def silu(b: OnnxBuilder, node: Node) -> None:
    b.emit("Mul", [b.x(node), b.emit("Sigmoid", [b.x(node)])], [b.y(node)])


@lowering("hardsigmoid")
def hardsigmoid(b: OnnxBuilder, node: Node) -> None:
    b.emit("HardSigmoid", [b.x(node)], [b.y(node)], alpha=1.0 / 6.0, beta=0.5)


@lowering("leaky_relu")
def leaky_relu(b: OnnxBuilder, node: Node) -> None:
    b.emit("LeakyRelu", [b.x(node)], [b.y(node)], alpha=node.attrs["negative_slope"])


@lowering("gelu")
def gelu(b: OnnxBuilder, node: Node) -> None:
    approximate, dtype = node.attrs["approximate"], node.inputs[0].dtype
    if b.opset >= 20:
        b.emit("Gelu", [b.x(node)], [b.y(node)], approximate=approximate)
        return
    x = b.x(node)
    if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = b.emit("Mul", [b.emit("Mul", [x, x]), x])
        inner = b.emit("Add", [x, b.emit("Mul", [cube, b.scalar(0.044715, dtype, "c")])])
        core = b.emit("Tanh", [b.emit("Mul", [inner, b.scalar(math.sqrt(2 / math.pi), dtype, "k")])])
    else:  # 0.5 x (1 + erf(x / sqrt(2)))
        core = b.emit("Erf", [b.emit("Mul", [x, b.scalar(1 / math.sqrt(2), dtype, "inv_sqrt2")])])
    one_plus = b.emit("Add", [core, b.scalar(1.0, dtype, "one")])
    half_x = b.emit("Mul", [x, b.scalar(0.5, dtype, "half")])
    b.emit("Mul", [half_x, one_plus], [b.y(node)])


@lowering("clip")
def clip(b: OnnxBuilder, node: Node) -> None:
    dtype = node.outputs[0].dtype
    bounds = ["" if node.attrs[k] is None else b.scalar(node.attrs[k], dtype, k) for k in ("min", "max")]
    while bounds and not bounds[-1]:
        bounds.pop()
    b.emit("Clip", [b.x_as(node, 0, dtype)] + bounds, [b.y(node)])


@lowering("softmax", "log_softmax")
def softmax(b: OnnxBuilder, node: Node) -> None:
    op_type = "Softmax" if node.op == "softmax" else "LogSoftmax"
    b.emit(op_type, [b.x(node)], [b.y(node)], axis=node.attrs["dim"])


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


@lowering("sin", "cos")
def trig(b: OnnxBuilder, node: Node) -> None:
    """ONNX Sin/Cos take floats only: integer inputs are cast to the result dtype first."""
    x = b.x_as(node, 0, node.outputs[0].dtype)
    b.emit("Sin" if node.op == "sin" else "Cos", [x], [b.y(node)])

"""Elementwise ONNX ops: unary math and activations, broadcasting binary ops, comparisons,
logical ops, Where, Clip, Cast, the variadic Sum/Mean/Max/Min, Softmax and LogSoftmax."""
from __future__ import annotations

import numpy as np
import torch

from compiler.ir import Value
from frontends.onnx.context import OnnxNodeContext
from frontends.onnx.table import onnx_op
from frontends.onnx.tensors import torch_dtype

_UNARY = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp", "Log": "log",
          "Sqrt": "sqrt", "Neg": "neg", "Abs": "abs", "Erf": "erf", "HardSwish": "hardswish",
          "Floor": "floor", "Ceil": "ceil", "Round": "round", "Reciprocal": "reciprocal",
          "Not": "logical_not"}
_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Equal": "equal", "Less": "less",
           "Greater": "greater", "LessOrEqual": "less_equal", "GreaterOrEqual": "greater_equal",
           "And": "logical_and", "Or": "logical_or", "Xor": "logical_xor"}


def _unary(op_type: str, ir_op: str) -> None:  # input dtypes were checked against the ONNX schema
    onnx_op(op_type, ir=ir_op)(lambda cx: cx.emit(ir_op, [cx.x]))


def _binary(op_type: str, ir_op: str) -> None:
    onnx_op(op_type, ir=ir_op, note="numpy broadcasting")(
        lambda cx: cx.emit(ir_op, [cx.required(0), cx.required(1)]))


for _op_type, _ir_op in _UNARY.items():
    _unary(_op_type, _ir_op)
for _op_type, _ir_op in _BINARY.items():
    _binary(_op_type, _ir_op)


@onnx_op("Div", ir="div", note="integer division truncates, as in ONNX")
def div(cx: OnnxNodeContext):
    a, b = cx.required(0), cx.required(1)
    exact = a.dtype.is_floating_point or b.dtype.is_floating_point
    return cx.emit("div", [a, b], {} if exact else {"rounding_mode": "trunc"})


@onnx_op("Pow", ir="pow", note="the result keeps the base's dtype")
def pow_(cx: OnnxNodeContext):
    base, exponent = cx.required(0), cx.required(1)
    if base.dtype == exponent.dtype:
        return cx.emit("pow", [base, exponent])
    if base.dtype.is_floating_point:
        return cx.emit("pow", [base, cx.cast(exponent, base.dtype, suffix="exponent")])
    return cx.cast(cx.emit("pow", [base, exponent], suffix="pow"), base.dtype)


@onnx_op("Where", ir="where")
def where(cx: OnnxNodeContext):
    return cx.emit("where", [cx.required(0), cx.required(1), cx.required(2)])


@onnx_op("Identity", ir="(no node)")
def identity(cx: OnnxNodeContext):
    return cx.x


@onnx_op("Dropout", ir="(no node)", note="inference only: training_mode must be false")
def dropout(cx: OnnxNodeContext):
    if cx.input(2) is not None and cx.scalar(2, "training_mode"):
        raise cx.unsupported("training_mode=true")
    x = cx.x
    mask = None
    if len(cx.outputs) > 1 and cx.outputs[1]:
        mask = cx.emit("expand", [cx.constant(torch.tensor(True), "true")], {"shape": x.shape}, suffix="mask")
    return [x, mask]


@onnx_op("Cast", ir="cast", note="to the supported dtypes (no strings, float8 or 4-bit)")
def cast(cx: OnnxNodeContext):
    return cx.cast(cx.x, torch_dtype(cx.attr("to", "int"), "the Cast target"))


@onnx_op("CastLike", ir="cast")
def cast_like(cx: OnnxNodeContext):
    return cx.cast(cx.x, cx.required(1).dtype)


@onnx_op("LeakyRelu", ir="leaky_relu")
def leaky_relu(cx: OnnxNodeContext):
    return cx.emit("leaky_relu", [cx.x], {"negative_slope": cx.attr("alpha", "float", 0.01)})


@onnx_op("HardSigmoid", ir="hardsigmoid, or mul+add+clip", note="any alpha and beta")
def hard_sigmoid(cx: OnnxNodeContext):
    x = cx.x
    alpha, beta = cx.attr("alpha", "float", 0.2), cx.attr("beta", "float", 0.5)
    if alpha == float(np.float32(1 / 6)) and beta == 0.5:
        return cx.emit("hardsigmoid", [x])
    scaled = cx.emit("add", [cx.emit("mul", [x, cx.like(alpha, x, "alpha")], suffix="scaled"),
                             cx.like(beta, x, "beta")], suffix="shifted")
    return cx.emit("clip", [scaled], {"min": 0.0, "max": 1.0})


@onnx_op("Gelu", ir="gelu")
def gelu(cx: OnnxNodeContext):
    approximate = cx.attr("approximate", "str", "none")
    if approximate not in ("none", "tanh"):
        raise cx.unsupported(f"approximate='{approximate}'")
    return cx.emit("gelu", [cx.x], {"approximate": approximate})


@onnx_op("PRelu", ir="prelu, or where+less+mul", note="prelu for a shared or per-channel static slope")
def prelu(cx: OnnxNodeContext):
    x, slope = cx.required(0), cx.required(1)
    if slope.data is not None and x.dtype.is_floating_point and slope.dtype == x.dtype:
        padded = (1,) * (x.rank - slope.rank) + slope.shape
        if slope.type.numel == 1:
            return cx.emit("prelu", [x, cx.reshape(slope, (1,), suffix="slope")])
        if x.rank >= 2 and len(padded) == x.rank and padded[1] == x.shape[1] and \
                all(d == 1 for i, d in enumerate(padded) if i != 1):
            return cx.emit("prelu", [x, cx.reshape(slope, (x.shape[1],), suffix="slope")])
    negative = cx.emit("less", [x, cx.like(0, x, "zero")], suffix="negative")
    return cx.emit("where", [negative, cx.emit("mul", [x, slope], suffix="scaled"), x])


@onnx_op("Clip", ir="clip, or maximum/minimum", note="clip for static float bounds")
def clip(cx: OnnxNodeContext):
    x, low, high = cx.x, cx.input(1), cx.input(2)
    if x.dtype.is_floating_point and all(v is None or (v.data is not None and v.type.numel == 1)
                                         for v in (low, high)):
        bounds = {k: None if v is None else float(v.data.reshape(()).item()) for k, v in (("min", low), ("max", high))}
        return cx.emit("clip", [x], bounds) if any(b is not None for b in bounds.values()) else x
    out = x
    if low is not None:
        out = cx.emit("maximum", [out, cx.cast(low, x.dtype, suffix="min")], suffix="low" if high is not None else "")
    if high is not None:
        out = cx.emit("minimum", [out, cx.cast(high, x.dtype, suffix="max")])
    return out


def _chain(cx: OnnxNodeContext, ir_op: str, *, named: bool = True) -> Value:
    """inputs[0] op inputs[1] op ...; the last node takes the output's name when `named`."""
    values = [cx.required(i) for i in range(cx.num_inputs)]
    if not values:
        raise cx.error("needs at least one input")
    out = values[0]
    for i, v in enumerate(values[1:], start=1):
        last = i == len(values) - 1 and named
        out = cx.emit(ir_op, [out, v], suffix="" if last else f"{ir_op}{i}")
    return out


for _op_type, _ir_op in {"Sum": "add", "Max": "maximum", "Min": "minimum"}.items():
    onnx_op(_op_type, ir=_ir_op, note="variadic: a chain of binary ops")(
        lambda cx, _ir=_ir_op: _chain(cx, _ir))


@onnx_op("Mean", ir="add + div", note="variadic")
def mean(cx: OnnxNodeContext):
    total = _chain(cx, "add", named=False)
    if cx.num_inputs == 1:
        return total
    return cx.emit("div", [total, cx.like(cx.num_inputs, total, "count")])


@onnx_op("Softmax", "LogSoftmax", ir="softmax / log_softmax",
         note="before opset 13 the input is coerced to 2-D at axis (a reshape around it)")
def softmax(cx: OnnxNodeContext):
    x, ir_op = cx.x, "softmax" if cx.op_type == "Softmax" else "log_softmax"
    if cx.opset >= 13:
        return cx.emit(ir_op, [x], {"dim": cx.normalize_axis(cx.attr("axis", "int", -1), x.rank)})
    axis = cx.normalize_axis(cx.attr("axis", "int", 1), x.rank)
    if axis == x.rank - 1:
        return cx.emit(ir_op, [x], {"dim": axis})
    rows = int(np.prod(x.shape[:axis], dtype=np.int64))
    flat = cx.reshape(x, (rows, x.type.numel // max(rows, 1)), suffix="2d")
    return cx.reshape(cx.emit(ir_op, [flat], {"dim": 1}, suffix=ir_op), x.shape)


@onnx_op("Einsum", ir="einsum", note="any equation torch.einsum takes (implicit output, '...')")
def einsum(cx: OnnxNodeContext):
    operands = [cx.required(i) for i in range(cx.num_inputs)]
    return cx.emit("einsum", operands, {"equation": cx.attr("equation", "str").replace(" ", "")})

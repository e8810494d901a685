"""torch.*, torch.nn.functional.* and operator.* callables -> IR (fx `call_function` targets).

Each rule mirrors the torch signature it replaces, so fx's positional and keyword arguments bind
the way they did in the model. Python-scalar operands of arithmetic become 0-d constants.
"""
from __future__ import annotations

import builtins
import operator
from typing import Any, Callable

import torch
import torch.nn.functional as F

from compiler.ir import Value
from frontends.torch_fx import lowering, shapes
from frontends.torch_fx.context import FxNodeContext
from frontends.torch_fx.indexing import getitem


def _unary(op: str) -> Callable:
    return lambda cx, input, inplace=False: lowering.unary(cx, op, input)


def _binary(op: str, **attrs: Any) -> Callable:
    return lambda cx, a, b: lowering.binary(cx, op, a, b, attrs or None)


def _add(cx: FxNodeContext, input: Any, other: Any, *, alpha: Any = 1) -> Value:
    return lowering.binary(cx, "add", input, lowering.scaled(cx, other, alpha))


def _sub(cx: FxNodeContext, input: Any, other: Any, *, alpha: Any = 1) -> Value:
    return lowering.binary(cx, "sub", input, lowering.scaled(cx, other, alpha))


def _rsub(cx: FxNodeContext, input: Any, other: Any, *, alpha: Any = 1) -> Value:
    return lowering.binary(cx, "sub", other, lowering.scaled(cx, input, alpha))


def _div(cx: FxNodeContext, input: Any, other: Any, *, rounding_mode: str | None = None) -> Value:
    return lowering.binary(cx, "div", input, other, {"rounding_mode": rounding_mode})


def _square(cx: FxNodeContext, input: Any) -> Value:
    return lowering.binary(cx, "mul", input, input)


def _matmul(cx: FxNodeContext, input: Any, other: Any) -> Value:
    return cx.emit("matmul", [cx.tensor(input), cx.tensor(other, "other")])


def _getattr(cx: FxNodeContext, obj: Any, name: str, *default: Any) -> Any:
    """Tensor attributes that are tensors (`x.T`, `x.mT`, `x.data`); other objects as Python."""
    if not isinstance(obj, Value):
        return getattr(obj, name, *default)
    if name == "data":
        return obj
    if name == "T":
        return shapes.permute(cx, obj, tuple(reversed(range(obj.type.rank))))
    if name == "mT":
        return shapes.transpose(cx, obj, -2, -1)
    raise cx.error(f"tensor attribute '.{name}' is not supported")


def _softmax(op: str) -> Callable:
    return lambda cx, input, dim=None, _stacklevel=3, dtype=None: lowering.softmax(cx, op, input, dim, dtype)


def _reduce(op: str) -> Callable:
    return lambda cx, input, dim=None, keepdim=False, *, dtype=None: lowering.reduce(cx, op, input, dim, keepdim, dtype)


def _clamp(cx: FxNodeContext, input: Any, min: Any = None, max: Any = None) -> Value:
    return lowering.clip(cx, input, min, max)


def _max(op: str, binary_op: str) -> Callable:
    return lambda cx, input, dim=None, keepdim=False, *, other=None: shapes.max_min(cx, op, binary_op, input, dim,
                                                                               keepdim, other)


def _nd(rule: Callable, nd: int) -> Callable:
    return lambda cx, *args, **kwargs: rule(cx, nd, *args, **kwargs)


def _adaptive(op: str, nd: int) -> Callable:
    return lambda cx, *args, **kwargs: lowering.adaptive_pool(cx, op, nd, *args, **kwargs)


FUNCTIONS: dict[Any, Callable[..., Any]] = {
    # arithmetic (operator.* is what `a + b`, `2 * x`, `x @ w`, `-x` trace to)
    operator.add: _binary("add"), operator.iadd: _binary("add"), torch.add: _add,
    operator.sub: _binary("sub"), operator.isub: _binary("sub"), torch.sub: _sub, torch.subtract: _sub,
    torch.rsub: _rsub,
    operator.mul: _binary("mul"), operator.imul: _binary("mul"), torch.mul: _binary("mul"),
    torch.multiply: _binary("mul"),
    operator.truediv: _binary("div"), operator.itruediv: _binary("div"), torch.div: _div, torch.divide: _div,
    torch.true_divide: _binary("div"),
    operator.floordiv: _binary("div", rounding_mode="floor"), operator.ifloordiv: _binary("div", rounding_mode="floor"),
    torch.floor_divide: _binary("div", rounding_mode="floor"),
    operator.pow: _binary("pow"), operator.ipow: _binary("pow"), torch.pow: _binary("pow"),
    torch.maximum: _binary("maximum"), torch.minimum: _binary("minimum"), torch.square: _square,
    operator.neg: _unary("neg"), torch.neg: _unary("neg"), torch.negative: _unary("neg"),
    operator.pos: shapes.identity,
    operator.matmul: _matmul, operator.imatmul: _matmul, torch.matmul: _matmul, torch.mm: _matmul, torch.bmm: _matmul,
    # activations and math
    torch.relu: _unary("relu"), F.relu: _unary("relu"), torch.sigmoid: _unary("sigmoid"), F.sigmoid: _unary("sigmoid"),
    torch.tanh: _unary("tanh"), F.tanh: _unary("tanh"), F.silu: _unary("silu"), F.hardswish: _unary("hardswish"),
    F.hardsigmoid: _unary("hardsigmoid"), torch.exp: _unary("exp"), torch.log: _unary("log"),
    torch.sqrt: _unary("sqrt"), torch.rsqrt: _unary("rsqrt"), torch.abs: _unary("abs"), torch.erf: _unary("erf"),
    F.gelu: lambda cx, input, approximate="none": lowering.unary(cx, "gelu", input, approximate=approximate),
    F.leaky_relu: lambda cx, input, negative_slope=0.01, inplace=False: lowering.unary(
        cx, "leaky_relu", input, negative_slope=float(negative_slope)),
    F.relu6: lambda cx, input, inplace=False: lowering.clip(cx, input, 0.0, 6.0),
    F.hardtanh: lambda cx, input, min_val=-1.0, max_val=1.0, inplace=False: lowering.clip(
        cx, input, float(min_val), float(max_val)),
    torch.clamp: _clamp, torch.clip: _clamp,
    torch.clamp_min: lambda cx, input, min: lowering.clip(cx, input, min, None),
    torch.clamp_max: lambda cx, input, max: lowering.clip(cx, input, None, max),
    torch.softmax: _softmax("softmax"), F.softmax: _softmax("softmax"),
    torch.log_softmax: _softmax("log_softmax"), F.log_softmax: _softmax("log_softmax"),
    # reductions
    torch.mean: _reduce("reduce_mean"), torch.sum: _reduce("reduce_sum"),
    torch.amax: _reduce("reduce_max"), torch.amin: _reduce("reduce_min"),
    torch.max: _max("reduce_max", "maximum"), torch.min: _max("reduce_min", "minimum"),
    # data movement
    torch.flatten: shapes.to_result_shape, torch.reshape: shapes.to_result_shape, torch.squeeze: shapes.to_result_shape,
    torch.unsqueeze: shapes.to_result_shape, torch.unflatten: shapes.to_result_shape,
    torch.permute: shapes.permute, torch.transpose: shapes.transpose, torch.swapaxes: shapes.transpose,
    torch.swapdims: shapes.transpose, torch.t: shapes.t,
    torch.cat: shapes.concat, torch.concat: shapes.concat, torch.concatenate: shapes.concat, torch.stack: shapes.stack,
    torch.split: shapes.split, torch.chunk: shapes.split, torch.unbind: shapes.unbind, torch.narrow: shapes.narrow,
    torch.broadcast_to: shapes.expand, F.pad: lambda cx, input, pad, mode="constant", value=None: lowering.pad(
        cx, cx.tensor(input), pad, mode, value),
    operator.getitem: getitem, builtins.getattr: _getattr,
    # nn.functional layers
    F.conv1d: lowering.conv, F.conv2d: lowering.conv, F.conv3d: lowering.conv,
    F.conv_transpose1d: lowering.conv_transpose, F.conv_transpose2d: lowering.conv_transpose, F.conv_transpose3d: lowering.conv_transpose,
    F.linear: lambda cx, input, weight, bias=None: cx.emit("linear", [cx.tensor(input), cx.tensor(weight), bias]),
    F.batch_norm: lowering.batch_norm, F.layer_norm: lowering.layer_norm, F.group_norm: lowering.group_norm, F.embedding: lowering.embedding,
    F.dropout: lowering.dropout, F.dropout1d: lowering.dropout, F.dropout2d: lowering.dropout, F.dropout3d: lowering.dropout,
    F.alpha_dropout: lambda cx, input, p=0.5, training=False, inplace=False: lowering.dropout(cx, input, p, training),
    F.feature_alpha_dropout: lambda cx, input, p=0.5, training=False, inplace=False: lowering.dropout(cx, input, p, training),
    torch.dropout: lambda cx, input, p, train: lowering.dropout(cx, input, p, train),
    F.interpolate: lowering.resize, F.upsample: lowering.resize,
    F.max_pool1d: _nd(lowering.max_pool, 1), F.max_pool2d: _nd(lowering.max_pool, 2), F.max_pool3d: _nd(lowering.max_pool, 3),
    F.avg_pool1d: _nd(lowering.avg_pool, 1), F.avg_pool2d: _nd(lowering.avg_pool, 2), F.avg_pool3d: _nd(lowering.avg_pool, 3),
    F.adaptive_avg_pool1d: _adaptive("adaptive_avg_pool", 1), F.adaptive_avg_pool2d: _adaptive("adaptive_avg_pool", 2),
    F.adaptive_avg_pool3d: _adaptive("adaptive_avg_pool", 3),
    F.adaptive_max_pool1d: _adaptive("adaptive_max_pool", 1), F.adaptive_max_pool2d: _adaptive("adaptive_max_pool", 2),
    F.adaptive_max_pool3d: _adaptive("adaptive_max_pool", 3),
}

# Tensors made from nothing but static values (or only the *shape* of their first argument):
# their recorded value becomes an IR constant.
FACTORIES = frozenset({torch.zeros, torch.ones, torch.full, torch.arange, torch.eye, torch.linspace, torch.tensor,
                       torch.zeros_like, torch.ones_like, torch.full_like})
LIKE_FACTORIES = frozenset({torch.zeros_like, torch.ones_like, torch.full_like})

# Functions that may turn a tensor into a Python value (static metadata, never tensor data).
METADATA = frozenset({builtins.len, torch.numel, torch.is_floating_point, torch.is_tensor})
METADATA_ATTRS = frozenset({"shape", "dtype", "device", "ndim", "is_cuda", "layout", "requires_grad", "is_sparse",
                            "is_quantized", "is_meta"})

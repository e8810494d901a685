"""Tensor methods -> IR (fx `call_method` targets), keyed by method name.

A rule gets (cx, self, *args, **kwargs). In-place variants (`add_`, `relu_`, ...) use the rule of
their out-of-place name; the translator checks that the mutated tensor is not read again.
Metadata methods (`size`, `dim`, `numel`, ...) never reach a rule: their results are Python
values that the translator keeps as constants.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from compiler.ir import TensorType, Value
from frontends.torch_fx import lowering, shapes
from frontends.torch_fx.context import FxNodeContext
from frontends.torch_fx.functions import FUNCTIONS


def _fn(target: Any) -> Callable:
    """The rule of the torch function with the same signature (self is the first argument)."""
    return FUNCTIONS[target]


def _view(cx: FxNodeContext, x: Any, *shape: Any) -> Value:
    if len(shape) == 1 and isinstance(shape[0], torch.dtype):
        raise cx.error(f"{cx.what()}(dtype) reinterprets bits and is not supported")
    return shapes.to_result_shape(cx, x)


def _permute(cx: FxNodeContext, x: Any, *dims: Any) -> Value:
    return shapes.permute(cx, x, dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims)


def _unary(op: str) -> Callable:
    return lambda cx, x: lowering.unary(cx, op, x)


def _masked_fill(cx: FxNodeContext, x: Any, mask: Any, value: Any) -> Value:
    """x * keep + fill (exact for finite x). A constant mask folds keep/fill into constants, so
    any fill value (even -inf) works; a computed mask needs a finite fill value."""
    x, mask = cx.tensor(x), cx.tensor(mask, "mask")
    if isinstance(value, Value) or not isinstance(value, (int, float, bool)):
        raise cx.error(f"{cx.what()} with a tensor fill value is not supported")
    if mask.dtype != torch.bool:
        raise cx.error(f"{cx.what()}: mask must be bool, got {mask.dtype}")
    out = cx.out_type()
    mid = TensorType(out.shape, x.dtype)
    if mask.data is not None and mask.producer is None:  # a constant mask
        keep = cx.constant((~mask.data).to(x.dtype), "keep")
        fill = cx.constant(torch.zeros(mask.shape, dtype=x.dtype).masked_fill(mask.data, value), "fill")
    else:
        if not math.isfinite(value):
            raise cx.error(f"{cx.what()}: a non-finite fill value ({value}) with a computed mask has no exact "
                           "arithmetic form", hint="use a large finite value such as -1e4")
        m = cx.cast(mask, x.dtype, suffix="mask")
        keep = cx.emit("sub", [cx.scalar(1, x.dtype), m], suffix="keep_mask", out=TensorType(mask.shape, x.dtype))
        fill = cx.emit("mul", [m, cx.scalar(value, x.dtype)], suffix="fill", out=TensorType(mask.shape, x.dtype))
    kept = cx.emit("mul", [x, keep], suffix="keep", out=mid)
    return cx.emit("add", [kept, fill])


METHODS: dict[str, Callable[..., Any]] = {
    # shape
    "view": _view, "reshape": shapes.to_result_shape, "view_as": shapes.to_result_shape, "reshape_as": shapes.to_result_shape,
    "flatten": shapes.to_result_shape, "unflatten": shapes.to_result_shape, "squeeze": shapes.to_result_shape,
    "unsqueeze": shapes.to_result_shape, "permute": _permute, "transpose": shapes.transpose, "swapaxes": shapes.transpose,
    "swapdims": shapes.transpose, "t": shapes.t, "contiguous": shapes.identity, "clone": shapes.identity, "detach": shapes.identity,
    "requires_grad_": shapes.identity, "chunk": shapes.split, "split": shapes.split, "unbind": shapes.unbind, "narrow": shapes.narrow,
    "expand": shapes.expand, "expand_as": shapes.expand, "broadcast_to": shapes.expand, "repeat": shapes.repeat,
    # casts (devices are ignored)
    "to": shapes.cast_to_result, "type": shapes.cast_to_result, "type_as": shapes.cast_to_result, "float": shapes.cast_to_result,
    "half": shapes.cast_to_result, "double": shapes.cast_to_result, "bfloat16": shapes.cast_to_result, "int": shapes.cast_to_result,
    "long": shapes.cast_to_result, "bool": shapes.cast_to_result, "cpu": shapes.identity, "cuda": shapes.identity,
    # math
    "relu": _unary("relu"), "sigmoid": _unary("sigmoid"), "tanh": _unary("tanh"), "exp": _unary("exp"),
    "log": _unary("log"), "sqrt": _unary("sqrt"), "rsqrt": _unary("rsqrt"), "abs": _unary("abs"),
    "neg": _unary("neg"), "negative": _unary("neg"), "erf": _unary("erf"),
    "add": _fn(torch.add), "sub": _fn(torch.sub), "subtract": _fn(torch.sub), "mul": _fn(torch.mul),
    "multiply": _fn(torch.mul), "div": _fn(torch.div), "divide": _fn(torch.div), "true_divide": _fn(torch.true_divide),
    "floor_divide": _fn(torch.floor_divide), "pow": _fn(torch.pow), "square": _fn(torch.square),
    "maximum": _fn(torch.maximum), "minimum": _fn(torch.minimum),
    "matmul": _fn(torch.matmul), "mm": _fn(torch.mm), "bmm": _fn(torch.bmm),
    "clamp": _fn(torch.clamp), "clip": _fn(torch.clip), "clamp_min": _fn(torch.clamp_min),
    "clamp_max": _fn(torch.clamp_max),
    "softmax": lambda cx, x, dim, dtype=None: lowering.softmax(cx, "softmax", x, dim, dtype),
    "log_softmax": lambda cx, x, dim, dtype=None: lowering.softmax(cx, "log_softmax", x, dim, dtype),
    "mean": _fn(torch.mean), "sum": _fn(torch.sum), "amax": _fn(torch.amax), "amin": _fn(torch.amin),
    "max": _fn(torch.max), "min": _fn(torch.min),
    "masked_fill": _masked_fill,
}

# Methods whose result is data-independent: the recorded value becomes a constant.
FACTORIES = frozenset({"new_zeros", "new_ones", "new_full", "new_tensor"})

# Methods that may turn a tensor into a Python value (static metadata, never tensor data).
METADATA = frozenset({"size", "dim", "ndimension", "numel", "nelement", "is_floating_point", "is_complex",
                      "get_device", "is_contiguous", "element_size", "type", "__len__"})

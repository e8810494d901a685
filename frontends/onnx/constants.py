"""Ops whose result is known at import time: Constant, ConstantOfShape, Range, Shape, Size,
NonZero, Mod (the last two only on static inputs).

With every input shape static, `Shape` is a constant, and so is everything exporters compute
from it (Gather -> Unsqueeze -> Concat -> Reshape chains): `OnnxNodeContext.emit` folds any node whose inputs
are all static, and these mappings produce the static leaves. A result is only materialized after
its size was checked, so a hostile ConstantOfShape or Range cannot allocate terabytes.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from frontends.onnx.context import OnnxNodeContext
from frontends.onnx.table import onnx_op
from compiler.constant_folding import FoldLimits
from compiler.ir import TensorType


@onnx_op("Constant", ir="(a constant)", note="string and sparse values are not supported")
def constant(cx: OnnxNodeContext):
    if cx.has_attr("value"):
        tensor = cx.tensor_attr("value")
    elif cx.has_attr("value_float"):
        tensor = torch.tensor(cx.attr("value_float", "float"), dtype=torch.float32)
    elif cx.has_attr("value_floats"):
        tensor = torch.tensor(cx.attr("value_floats", "floats"), dtype=torch.float32)
    elif cx.has_attr("value_int"):
        tensor = torch.tensor(cx.attr("value_int", "int"), dtype=torch.int64)
    elif cx.has_attr("value_ints"):
        tensor = torch.tensor(cx.attr("value_ints", "ints"), dtype=torch.int64)
    else:
        kinds = ", ".join(a.name for a in cx.node.attribute) or "none"
        raise cx.unsupported(f"a Constant holding {kinds}")
    return cx.constant(tensor, from_model=True)


@onnx_op("ConstantOfShape", ir="expand of a scalar (folded)", note="the shape input must be static")
def constant_of_shape(cx: OnnxNodeContext):
    shape = cx.ints(0, "the shape")
    if any(d < 0 for d in shape):
        raise cx.error(f"shape {shape} has a negative dim")
    fill = cx.tensor_attr("value")
    fill = torch.tensor([0.0]) if fill is None else fill
    if fill.numel() != 1:
        raise cx.error(f"the fill value must hold one element, got shape {list(fill.shape)}")
    return cx.emit("expand", [cx.constant(fill.reshape(()), "value")], {"shape": tuple(shape)})


@onnx_op("Range", ir="(a constant)", note="start, limit and delta must be static")
def range_(cx: OnnxNodeContext):
    start, limit, delta = (cx.static(i, name) for i, name in enumerate(("start", "limit", "delta")))
    if any(t is None or t.numel() != 1 for t in (start, limit, delta)):
        raise cx.error("start, limit and delta must each hold one value")
    dtype = start.dtype
    s, l, d = (t.reshape(()).item() for t in (start, limit, delta))
    if d == 0:
        raise cx.error("delta is 0")
    count = max(int(math.ceil((l - s) / d)), 0)
    cx.check_type(TensorType((count,), dtype))
    if dtype.is_floating_point:  # onnxruntime accumulates start + delta + delta ... in T
        steps = np.full(count, d, dtype=_np(dtype))
        if count:
            steps[0] = s
        values = torch.from_numpy(np.add.accumulate(steps, dtype=_np(dtype)))
    else:
        values = torch.arange(count, dtype=dtype) * d + s
    return cx.constant(values.to(dtype))


def _np(dtype: torch.dtype):
    return torch.empty((), dtype=dtype).numpy().dtype


@onnx_op("Shape", ir="(a constant)", note="start/end slicing from opset 15")
def shape(cx: OnnxNodeContext):
    dims = cx.x.shape
    start, end = cx.attr("start", "int", 0), cx.attr("end", "int", len(dims))
    return cx.constant(torch.tensor(dims[start:end], dtype=torch.int64))


@onnx_op("Size", ir="(a constant)")
def size(cx: OnnxNodeContext):
    return cx.constant(torch.tensor(cx.x.type.numel, dtype=torch.int64))


@onnx_op("NonZero", ir="(a constant)", note="only on static inputs: its output shape depends on the data")
def nonzero(cx: OnnxNodeContext):
    data = cx.static(0, "the input (its nonzero count decides the output shape)")
    return cx.constant(torch.nonzero(data).t().contiguous() if data.dim() else
                       torch.zeros((0, int(bool(data))), dtype=torch.int64))


@onnx_op("Mod", ir="(a constant)", note="only on static inputs")
def mod(cx: OnnxNodeContext):
    a, b = cx.static(0, "the dividend"), cx.static(1, "the divisor")
    if math.prod(torch.broadcast_shapes(a.shape, b.shape)) > FoldLimits.max_elements:
        raise cx.error("the result is too large to compute at import time")
    fmod = cx.attr("fmod", "int", 0)
    if not fmod and a.is_floating_point():
        raise cx.error("Mod with fmod=0 needs integer inputs")
    if (b == 0).any() and not a.is_floating_point():
        raise cx.error("integer Mod by zero")
    return cx.constant(torch.fmod(a, b) if fmod else torch.remainder(a, b))

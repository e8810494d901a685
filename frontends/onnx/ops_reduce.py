"""Reductions: ReduceMean/Sum/Max/Min (and L1, L2, SumSquare decomposed), ArgMax/ArgMin, TopK."""
from __future__ import annotations

import torch

from compiler.ir import Value
from frontends.onnx.context import OnnxNodeContext
from frontends.onnx.table import onnx_op

_REDUCE = {"ReduceMean": "reduce_mean", "ReduceSum": "reduce_sum", "ReduceMax": "reduce_max",
           "ReduceMin": "reduce_min", "ReduceL1": "reduce_sum", "ReduceL2": "reduce_sum",
           "ReduceSumSquare": "reduce_sum"}


def _reduce_axes(cx: OnnxNodeContext, x: Value) -> list[int] | None:
    """The reduced axes (all when empty), or None for a no-op (noop_with_empty_axes)."""
    axes_as_input = cx.opset >= (13 if cx.op_type == "ReduceSum" else 18)
    if axes_as_input:
        axes = cx.ints(1, "axes") if cx.input(1) is not None else []
    else:
        axes = cx.attr("axes", "ints", [])
    if not axes and cx.flag("noop_with_empty_axes", 0):
        return None
    normalized = [cx.normalize_axis(a, x.rank) for a in axes] if axes else list(range(x.rank))
    if len(set(normalized)) != len(normalized):
        raise cx.error(f"axes {axes} repeat an axis")
    return sorted(normalized)


@onnx_op(*_REDUCE, ir="reduce_mean / reduce_sum / reduce_max / reduce_min",
         note="axes from the attribute or (ReduceSum >= 13, others >= 18) the input; L1 = sum(abs), "
              "L2 = sqrt(sum(x*x)), SumSquare = sum(x*x)")
def reduce(cx: OnnxNodeContext):
    x = cx.x
    axes = _reduce_axes(cx, x)
    if axes is None:
        return x
    keep = cx.flag("keepdims", 1)
    ir_op = _REDUCE[cx.op_type]
    if cx.op_type == "ReduceL1":
        x = cx.emit("abs", [x], suffix="abs")
    elif cx.op_type in ("ReduceL2", "ReduceSumSquare"):
        x = cx.emit("mul", [x, x], suffix="square")
    if ir_op == "reduce_mean" and not x.dtype.is_floating_point:
        raise cx.unsupported(f"ReduceMean of {x.dtype}")
    attrs = {"dims": tuple(axes), "keepdim": keep}
    narrow = ir_op == "reduce_sum" and x.dtype != torch.int64 and not x.dtype.is_floating_point
    last = cx.op_type != "ReduceL2" and not narrow
    y = cx.emit(ir_op, [x], attrs, suffix="" if last else "sum")
    if cx.op_type == "ReduceL2":
        return cx.emit("sqrt", [y])
    return cx.cast(y, x.dtype) if narrow else y  # torch sums small integers in int64, ONNX does not


@onnx_op("ArgMax", "ArgMin", ir="argmax / argmin", note="select_last_index=0 only")
def arg_extreme(cx: OnnxNodeContext):
    x = cx.x
    if cx.flag("select_last_index", 0):
        raise cx.unsupported("select_last_index=1")
    axis = cx.normalize_axis(cx.attr("axis", "int", 0), x.rank)
    return cx.emit("argmax" if cx.op_type == "ArgMax" else "argmin", [x],
                   {"dim": axis, "keepdim": cx.flag("keepdims", 1)})


@onnx_op("TopK", ir="topk", note="K must be static; results are always sorted")
def topk(cx: OnnxNodeContext):
    x = cx.x
    k = cx.ints(1, "K")
    if len(k) != 1:
        raise cx.error(f"K must hold one value, got {k}")
    axis = cx.normalize_axis(cx.attr("axis", "int", -1), x.rank)
    return cx.emit_multi("topk", [x], {"k": k[0], "dim": axis, "largest": cx.flag("largest", 1)})


@onnx_op("ReduceProd", ir="(a constant)", note="only on static inputs (shape arithmetic), which it folds")
def reduce_prod(cx: OnnxNodeContext):
    data = cx.static(0, "the input (ReduceProd is folded at import, e.g. over a Shape)")
    axes = _reduce_axes(cx, cx.x)
    if axes is None:
        return cx.x
    keep = bool(cx.attr("keepdims", "int", 1))
    result = data
    for axis in reversed(axes):
        result = torch.prod(result, dim=axis, keepdim=keep)
    return cx.constant(result.to(data.dtype))

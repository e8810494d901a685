"""Pooling ONNX ops: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.

onnxruntime's ceil_mode (a last window that would start in the end padding is dropped) is
torch's, so symmetric pools map one to one. Padding torch's pools cannot take (asymmetric, or
more than half the kernel) becomes an explicit `pad` (-inf for max, 0 for average when padding
counts) in front of an unpadded pool.
"""
from __future__ import annotations

import math

import torch

from compiler.ir import Value
from frontends.onnx.context import OnnxNodeContext
from frontends.onnx.ops_nn import explicit_pads
from frontends.onnx.table import onnx_op


def pooled_size(n: int, k: int, s: int, begin: int, end: int, d: int, ceil: bool) -> int:
    """onnxruntime's (and torch's) output size of one pooled dim."""
    span = n + begin + end - d * (k - 1) - 1
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= n + begin:
        out -= 1
    return out


def _geometry(cx: OnnxNodeContext, x: Value):
    kernel = cx.attr("kernel_shape", "ints")
    k = len(kernel)
    if k < 1 or x.rank != k + 2 or min(kernel) < 1:
        raise cx.error(f"kernel_shape {kernel} does not fit an input of shape {list(x.shape)}")
    strides = cx.attr("strides", "ints", [1] * k)
    dilations = cx.attr("dilations", "ints", [1] * k)
    if len(strides) != k or len(dilations) != k or min(strides + dilations) < 1:
        raise cx.error(f"strides {strides} / dilations {dilations} do not fit kernel_shape {kernel}")
    begin, end = explicit_pads(cx, x, kernel, strides, dilations)
    ceil = cx.flag("ceil_mode", 0)
    sizes = [pooled_size(n, kk, s, b, e, d, ceil)
             for n, kk, s, b, e, d in zip(x.shape[2:], kernel, strides, begin, end, dilations)]
    if min(sizes) < 1:
        raise cx.error(f"the pooling window does not fit the input {list(x.shape)}")
    return kernel, strides, dilations, begin, end, ceil, sizes


def _direct(kernel, begin, end) -> bool:
    return begin == end and all(2 * p <= kk for p, kk in zip(begin, kernel))


def _floor_pads(x: Value, kernel, strides, dilations, begin, end, sizes) -> list[int]:
    """End pads that make a floor-mode pool over the explicitly padded input give `sizes`."""
    return [e + max(0, (o - 1) * s + d * (kk - 1) + 1 - (n + b + e))
            for n, kk, s, d, b, e, o in zip(x.shape[2:], kernel, strides, dilations, begin, end, sizes)]


def _torch_pads(begin: list[int], end: list[int]) -> tuple[int, ...]:
    pads: list[int] = []
    for b, e in zip(reversed(begin), reversed(end)):
        pads += [b, e]
    return tuple(pads)


@onnx_op("MaxPool", ir="max_pool (pad with -inf + max_pool for asymmetric pads)",
         note="the Indices output is unavailable; storage_order is irrelevant without it")
def max_pool(cx: OnnxNodeContext):
    x = cx.x
    kernel, strides, dilations, begin, end, ceil, sizes = _geometry(cx, x)
    attrs = {"kernel": tuple(kernel), "stride": tuple(strides), "dilation": tuple(dilations)}
    if _direct(kernel, begin, end):
        y = cx.emit("max_pool", [x], {**attrs, "padding": tuple(begin), "ceil_mode": ceil})
    else:
        lowest = -math.inf if x.dtype.is_floating_point else torch.iinfo(x.dtype).min
        ends = _floor_pads(x, kernel, strides, dilations, begin, end, sizes)
        padded = cx.emit("pad", [x], {"pads": _torch_pads(begin, ends), "value": float(lowest)}, suffix="pad")
        y = cx.emit("max_pool", [padded], {**attrs, "padding": (0,) * len(kernel)})
    if list(y.shape[2:]) != sizes:
        raise cx.unsupported(f"this padding/ceil_mode combination (nnforge gets {list(y.shape[2:])}, "
                             f"onnxruntime {sizes})")
    return [y] + [None] * (len(cx.outputs) - 1)


@onnx_op("AveragePool", ir="avg_pool (zero pad + avg_pool for asymmetric pads that count)",
         note="no dilations; asymmetric pads only with count_include_pad=1")
def avg_pool(cx: OnnxNodeContext):
    x = cx.x
    kernel, strides, dilations, begin, end, ceil, sizes = _geometry(cx, x)
    if any(d != 1 for d in dilations):
        raise cx.unsupported(f"dilations {dilations}")
    include = cx.flag("count_include_pad", 0)
    attrs = {"kernel": tuple(kernel), "stride": tuple(strides), "count_include_pad": include}
    if _direct(kernel, begin, end):
        y = cx.emit("avg_pool", [x], {**attrs, "padding": tuple(begin), "ceil_mode": ceil})
    elif include:
        padded = cx.emit("pad", [x], {"pads": _torch_pads(begin, end)}, suffix="pad")
        y = cx.emit("avg_pool", [padded], {**attrs, "padding": (0,) * len(kernel), "ceil_mode": ceil})
    else:
        raise cx.unsupported(f"asymmetric pads {begin + end} with count_include_pad=0")
    if list(y.shape[2:]) != sizes:
        raise cx.unsupported(f"this padding/ceil_mode combination (nnforge gets {list(y.shape[2:])}, "
                             f"onnxruntime {sizes})")
    return y


@onnx_op("GlobalAveragePool", "GlobalMaxPool", ir="adaptive_avg_pool / adaptive_max_pool to 1",
         note="1-3 spatial dims (more: reduce_mean / reduce_max)")
def global_pool(cx: OnnxNodeContext):
    x = cx.x
    k = x.rank - 2
    if k < 1:
        raise cx.error(f"needs (N, C, spatial...), got {list(x.shape)}")
    average = cx.op_type == "GlobalAveragePool"
    if k <= 3:
        return cx.emit("adaptive_avg_pool" if average else "adaptive_max_pool", [x], {"output_size": (1,) * k})
    return cx.emit("reduce_mean" if average else "reduce_max", [x],
                   {"dims": tuple(range(2, x.rank)), "keepdim": True})

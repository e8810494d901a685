"""Pooling (fixed and adaptive) and resampling."""
from __future__ import annotations

import math

import torch

from backends.onnx.builder import OnnxBuilder
from backends.onnx.lowering.registry import lowering, per_spatial_dim, spatial_rank
from compiler.ir import Node


def _pool_geometry(b: OnnxBuilder, node: Node, dilation) -> tuple[list[int], list[int], list[int],
                                                                  list[int], bool]:
    """kernel, strides, begin pads, end pads and whether ceil_mode overhangs.

    ONNX's ceil_mode output size differs from torch's (torch drops a last window that would start
    in the end padding), so ceil_mode is never emitted: torch's output size (the IR type) is
    reached in floor mode by extending the end pads over the overhang.
    """
    a, k = node.attrs, spatial_rank(b, node, "kernel")
    kernel, stride = list(a["kernel"]), per_spatial_dim(a["stride"] or a["kernel"], k)
    pads, dilation = per_spatial_dim(a["padding"], k), per_spatial_dim(dilation, k)
    size_in, size_out = node.inputs[0].shape[2:], node.outputs[0].shape[2:]
    extra = [max(0, (o - 1) * s + d * (kk - 1) + 1 - (i + 2 * p))
             for i, o, s, kk, p, d in zip(size_in, size_out, stride, kernel, pads, dilation)]
    return kernel, stride, pads, [p + e for p, e in zip(pads, extra)], any(extra)


@lowering("max_pool")
def max_pool(b: OnnxBuilder, node: Node) -> None:
    """onnxruntime wants pads < kernel; a dilated ceil overhang can exceed that, so such pads
    become an explicit Pad with the dtype's lowest value (never the max of a window)."""
    kernel, stride, begins, ends, _ = _pool_geometry(b, node, node.attrs["dilation"])
    x, dtype = b.x(node), node.inputs[0].dtype
    if any(p >= k for p, k in zip(begins + ends, kernel + kernel)):
        lowest = -math.inf if dtype.is_floating_point else torch.iinfo(dtype).min
        pads = b.ints([0, 0] + begins + [0, 0] + ends, "pads")
        x = b.emit("Pad", [x, pads, b.scalar(lowest, dtype, "lowest")])
        begins = ends = [0] * len(kernel)
    b.emit("MaxPool", [x], [b.y(node)], kernel_shape=kernel, strides=stride,
           pads=begins + ends, dilations=per_spatial_dim(node.attrs["dilation"], len(kernel)))


@lowering("avg_pool")
def avg_pool(b: OnnxBuilder, node: Node) -> None:
    """Over a ceil overhang torch divides by the window clipped to input + declared padding: the
    declared padding (when counted) becomes an explicit zero Pad and the overhang is excluded."""
    kernel, stride, begins, ends, overhang = _pool_geometry(b, node, (1,))
    x, include_pad = b.x(node), node.attrs["count_include_pad"]
    if overhang and include_pad and any(begins):
        zeros = [0, 0]
        x = b.emit("Pad", [x, b.ints(zeros + begins + zeros + begins, "pads")])
        ends = [e - p for e, p in zip(ends, begins)]
        begins = [0] * len(kernel)
    b.emit("AveragePool", [x], [b.y(node)], kernel_shape=kernel, strides=stride, pads=begins + ends,
           count_include_pad=int(include_pad and not overhang))


@lowering("adaptive_avg_pool", "adaptive_max_pool")
def adaptive_pool(b: OnnxBuilder, node: Node) -> None:
    """Global pooling for 1x1 output; a fixed kernel = stride when the sizes divide; else an error."""
    kind = "Average" if node.op == "adaptive_avg_pool" else "Max"
    spatial_rank(b, node, "output_size")
    size_in, size_out = node.inputs[0].shape[2:], node.outputs[0].shape[2:]
    if all(o == 1 for o in size_out):
        b.emit(f"Global{kind}Pool", [b.x(node)], [b.y(node)])
    elif all(i % o == 0 for i, o in zip(size_in, size_out)):
        kernel = [i // o for i, o in zip(size_in, size_out)]
        b.emit(f"{kind}Pool", [b.x(node)], [b.y(node)], kernel_shape=kernel, strides=kernel)
    else:
        raise b.error(f"adaptive pooling from {list(size_in)} to {list(size_out)} has uneven windows",
                      hint="use an input size divisible by the output size, or a fixed pooling op")


_RESIZE = {  # IR mode -> (ONNX mode, extra attributes)
    "nearest": ("nearest", {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}),
    "nearest-exact": ("nearest", {"coordinate_transformation_mode": "half_pixel",
                                  "nearest_mode": "round_prefer_ceil"}),
    "linear": ("linear", {}), "bilinear": ("linear", {}), "trilinear": ("linear", {}),
    "bicubic": ("cubic", {"cubic_coeff_a": -0.75}),
}


@lowering("resize")
def resize(b: OnnxBuilder, node: Node) -> None:
    mode, extra = _RESIZE[node.attrs["mode"]]
    extra = dict(extra)
    if mode != "nearest":
        extra["coordinate_transformation_mode"] = ("align_corners" if node.attrs["align_corners"]
                                                   else "half_pixel")
    sizes = b.ints(node.outputs[0].shape, "sizes")
    b.emit("Resize", [b.x(node), "", "", sizes], [b.y(node)], mode=mode, **extra)

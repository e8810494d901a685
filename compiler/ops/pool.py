"""Pooling and resampling ops over the spatial dims (dim 2 on)."""
from __future__ import annotations

import torch.nn.functional as F

from compiler.ir import TensorType
from compiler.ops.interfaces import Trait
from compiler.ops.registry import NON_NEGATIVE, POSITIVE, Attr, OpDef, raise_shape, register_op


def _pooled_size(n: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    """torch's pooling output size; in ceil mode a last window must start inside the input."""
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= n + p:
        out -= 1
    return out


def _pool_infer(op: str):
    def infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
        x, k = ins[0], len(a["kernel"])
        if any(len(a[key]) != k for key in ("stride", "padding", "dilation") if key in a):
            raise_shape(op, ins, f"kernel, stride, padding and dilation must each have {k} entries")
        if x.rank not in (k + 1, k + 2):
            raise_shape(op, ins, f"expected a {k + 2}-d input")
        dilation = a.get("dilation", (1,) * k)
        spatial = []
        for i in range(k):
            if 2 * a["padding"][i] > a["kernel"][i]:
                raise_shape(op, ins, "padding must be at most half the kernel")
            size = _pooled_size(x.shape[-k + i], a["kernel"][i], a["stride"][i], a["padding"][i],
                                dilation[i], a["ceil_mode"])
            if size <= 0:
                raise_shape(op, ins, "the window is larger than the padded input")
            spatial.append(size)
        return [TensorType(x.shape[:-k] + tuple(spatial), x.dtype)]
    return infer


def _resample_infer(key: str):
    def infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
        x, size = ins[0], a[key]
        if x.rank < len(size) + 1 or any(d <= 0 for d in size):
            raise_shape("resample", ins, f"cannot produce spatial size {list(size)}")
        return [TensorType(x.shape[:-len(size)] + tuple(size), x.dtype)]
    return infer

_MAX = (F.max_pool1d, F.max_pool2d, F.max_pool3d)
_AVG = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)
_ADAPTIVE_AVG = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)
_ADAPTIVE_MAX = (F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d)

register_op(OpDef(
    name="max_pool", inputs=("x",), category="pool",
    attrs={"kernel": POSITIVE, "stride": POSITIVE, "padding": NON_NEGATIVE,
           "dilation": POSITIVE, "ceil_mode": Attr("bool", False)},
    torch_call=lambda i, a: (_MAX[len(a["kernel"]) - 1], (i[0],),
                             {"kernel_size": a["kernel"], "stride": a["stride"],
                              "padding": a["padding"], "dilation": a["dilation"],
                              "ceil_mode": a["ceil_mode"]}),
    infer_fn=_pool_infer("max_pool"), traits=Trait.CHANNEL_PRESERVING,
    doc="Max pooling."))

register_op(OpDef(
    name="avg_pool", inputs=("x",), category="pool",
    attrs={"kernel": POSITIVE, "stride": POSITIVE, "padding": NON_NEGATIVE,
           "ceil_mode": Attr("bool", False), "count_include_pad": Attr("bool", True)},
    torch_call=lambda i, a: (_AVG[len(a["kernel"]) - 1], (i[0],),
                             {"kernel_size": a["kernel"], "stride": a["stride"],
                              "padding": a["padding"], "ceil_mode": a["ceil_mode"],
                              "count_include_pad": a["count_include_pad"]}),
    infer_fn=_pool_infer("avg_pool"), traits=Trait.CHANNEL_PRESERVING,
    doc="Average pooling."))

register_op(OpDef(
    name="adaptive_avg_pool", inputs=("x",), category="pool",
    attrs={"output_size": Attr("ints")},
    torch_call=lambda i, a: (_ADAPTIVE_AVG[len(a["output_size"]) - 1], (i[0], a["output_size"]), {}),
    infer_fn=_resample_infer("output_size"), traits=Trait.CHANNEL_PRESERVING,
    doc="Adaptive average pooling to a fixed spatial size (1 = global average pooling)."))

register_op(OpDef(
    name="adaptive_max_pool", inputs=("x",), category="pool",
    attrs={"output_size": Attr("ints")},
    torch_call=lambda i, a: (_ADAPTIVE_MAX[len(a["output_size"]) - 1], (i[0], a["output_size"]), {}),
    infer_fn=_resample_infer("output_size"), traits=Trait.CHANNEL_PRESERVING,
    doc="Adaptive max pooling to a fixed spatial size."))

register_op(OpDef(
    name="resize", inputs=("x",), category="pool",
    attrs={"size": Attr("ints"),
           "mode": Attr("str", "nearest", choices=("nearest", "linear", "bilinear", "bicubic",
                                                   "trilinear", "nearest-exact")),
           "align_corners": Attr("bool?", None)},
    torch_call=lambda i, a: (F.interpolate, (i[0],),
                             {"size": a["size"], "mode": a["mode"], "align_corners": a["align_corners"]}),
    infer_fn=_resample_infer("size"), traits=Trait.CHANNEL_PRESERVING,
    doc="Resample spatial dims to a static size (F.interpolate)."))

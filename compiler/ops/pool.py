"""Pooling and resampling ops over the spatial dims (dim 2 on)."""
from __future__ import annotations

import torch.nn.functional as F

from compiler.ops.registry import Attr, OpDef, prod, register_op

_MAX = (F.max_pool1d, F.max_pool2d, F.max_pool3d)
_AVG = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)
_ADAPTIVE_AVG = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)
_ADAPTIVE_MAX = (F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d)

register_op(OpDef(
    name="max_pool", inputs=("x",), category="pool",
    attrs={"kernel": Attr("ints"), "stride": Attr("ints"), "padding": Attr("ints"),
           "dilation": Attr("ints"), "ceil_mode": Attr("bool", False)},
    torch_call=lambda i, a: (_MAX[len(a["kernel"]) - 1], (i[0],),
                             {"kernel_size": a["kernel"], "stride": a["stride"],
                              "padding": a["padding"], "dilation": a["dilation"],
                              "ceil_mode": a["ceil_mode"]}),
    doc="Max pooling."))

register_op(OpDef(
    name="avg_pool", inputs=("x",), category="pool",
    attrs={"kernel": Attr("ints"), "stride": Attr("ints"), "padding": Attr("ints"),
           "ceil_mode": Attr("bool", False), "count_include_pad": Attr("bool", True)},
    torch_call=lambda i, a: (_AVG[len(a["kernel"]) - 1], (i[0],),
                             {"kernel_size": a["kernel"], "stride": a["stride"],
                              "padding": a["padding"], "ceil_mode": a["ceil_mode"],
                              "count_include_pad": a["count_include_pad"]}),
    doc="Average pooling."))

register_op(OpDef(
    name="adaptive_avg_pool", inputs=("x",), category="pool",
    attrs={"output_size": Attr("ints")},
    torch_call=lambda i, a: (_ADAPTIVE_AVG[len(a["output_size"]) - 1], (i[0], a["output_size"]), {}),
    doc="Adaptive average pooling to a fixed spatial size (1 = global average pooling)."))

register_op(OpDef(
    name="adaptive_max_pool", inputs=("x",), category="pool",
    attrs={"output_size": Attr("ints")},
    torch_call=lambda i, a: (_ADAPTIVE_MAX[len(a["output_size"]) - 1], (i[0], a["output_size"]), {}),
    doc="Adaptive max pooling to a fixed spatial size."))

register_op(OpDef(
    name="resize", inputs=("x",), category="pool",
    attrs={"size": Attr("ints"),
           "mode": Attr("str", "nearest", choices=("nearest", "linear", "bilinear", "bicubic",
                                                   "trilinear", "nearest-exact")),
           "align_corners": Attr("bool?", None)},
    torch_call=lambda i, a: (F.interpolate, (i[0],),
                             {"size": a["size"], "mode": a["mode"], "align_corners": a["align_corners"]}),
    doc="Resample spatial dims to a static size (F.interpolate)."))

"""Data-movement ops: reshape, permute, concat, split, slice, broadcast, pad, cast."""
from __future__ import annotations

import operator

import torch
import torch.nn.functional as F

from compiler.ir import TensorType
from compiler.ops.registry import Attr, OpDef, prod, register_op


def _reshape_infer(ins: list[TensorType | None], attrs: dict) -> list[TensorType]:
    from compiler.errors import IRError
    x, shape = ins[0], attrs["shape"]
    if any(d < 0 for d in shape) or prod(shape) != x.numel:
        raise IRError(f"reshape of {list(x.shape)} ({x.numel} elements) to {list(shape)} "
                      f"is invalid: target dims must be static and keep the element count")
    return [TensorType(tuple(shape), x.dtype)]


def slice_index(attrs: dict) -> tuple:
    """The getitem index that selects start:end:step along `dim`."""
    return (slice(None),) * attrs["dim"] + (slice(attrs["start"], attrs["end"], attrs["step"]),)


register_op(OpDef(
    name="reshape", inputs=("x",), category="shape", attrs={"shape": Attr("ints")},
    torch_call=lambda i, a: (torch.reshape, (i[0], a["shape"]), {}),
    infer_fn=_reshape_infer,
    doc="Static reshape (flatten, view, squeeze and unsqueeze all become this)."))

register_op(OpDef(
    name="permute", inputs=("x",), category="shape", attrs={"dims": Attr("ints")},
    torch_call=lambda i, a: (torch.permute, (i[0], a["dims"]), {}),
    doc="Reorder dims (transpose becomes this)."))

register_op(OpDef(
    name="concat", inputs=("*xs",), category="shape", attrs={"dim": Attr("int")},
    torch_call=lambda i, a: (torch.cat, (list(i),), {"dim": a["dim"]}),
    doc="Concatenate inputs along dim."))

register_op(OpDef(
    name="split", inputs=("x",), category="shape",
    attrs={"sizes": Attr("ints"), "dim": Attr("int")},
    torch_call=lambda i, a: (torch.split, (i[0], list(a["sizes"])), {"dim": a["dim"]}),
    num_outputs=lambda a: len(a["sizes"]),
    doc="Split along dim into pieces of the given sizes; one output per piece."))

register_op(OpDef(
    name="slice", inputs=("x",), category="shape",
    attrs={"dim": Attr("int"), "start": Attr("int"), "end": Attr("int"), "step": Attr("int", 1)},
    torch_call=lambda i, a: (operator.getitem, (i[0], slice_index(a)), {}),
    doc="x[..., start:end:step] along dim (non-negative, in-range bounds)."))

register_op(OpDef(
    name="expand", inputs=("x",), category="shape", attrs={"shape": Attr("ints")},
    torch_call=lambda i, a: (torch.broadcast_to, (i[0], a["shape"]), {}),
    doc="Broadcast to a static shape."))

register_op(OpDef(
    name="pad", inputs=("x",), category="shape",
    attrs={"pads": Attr("ints"), "mode": Attr("str", "constant",
                                               choices=("constant", "reflect", "replicate", "circular")),
           "value": Attr("float", 0.0)},
    torch_call=lambda i, a: (F.pad, (i[0], a["pads"]),
                             {"mode": a["mode"], "value": a["value"]} if a["mode"] == "constant"
                             else {"mode": a["mode"]}),
    doc="Pad; pads in torch order (last dim first, (before, after) pairs)."))

register_op(OpDef(
    name="cast", inputs=("x",), category="shape", attrs={"dtype": Attr("dtype")},
    torch_call=lambda i, a: ("to", (i[0], a["dtype"]), {}),
    infer_fn=lambda ins, a: [TensorType(ins[0].shape, a["dtype"])],
    doc="Convert to another dtype."))

"""Data-movement ops: reshape, permute, concat, split, slice, broadcast, pad, cast."""
from __future__ import annotations

import operator

import torch
import torch.nn.functional as F

from compiler.ir import TensorType
from compiler.ops.interfaces import Trait
from compiler.ops.registry import Attr, OpDef, normalize_dim, prod, raise_shape, register_op, scalar_fits


def _reshape_infer(ins: list[TensorType | None], attrs: dict) -> list[TensorType]:
    from compiler.errors import IRError
    x, shape = ins[0], attrs["shape"]
    if any(d < 0 for d in shape) or prod(shape) != x.numel:
        raise IRError(f"reshape of {list(x.shape)} ({x.numel} elements) to {list(shape)} "
                      f"is invalid: target dims must be static and keep the element count")
    return [TensorType(tuple(shape), x.dtype)]


def _permute_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    x, dims = ins[0], a["dims"]
    if sorted(d % max(x.rank, 1) for d in dims) != list(range(x.rank)) or len(dims) != x.rank:
        raise_shape("permute", ins, f"dims {list(dims)} are not a permutation of rank {x.rank}")
    return [TensorType(tuple(x.shape[d] for d in dims), x.dtype)]


def _concat_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    first = ins[0]
    dim = normalize_dim("concat", ins, a["dim"], first.rank)
    for t in ins[1:]:
        if t.rank != first.rank or t.dtype != first.dtype or \
                any(n != m for i, (n, m) in enumerate(zip(t.shape, first.shape)) if i != dim):
            raise_shape("concat", ins, f"inputs must agree in dtype and every dim but {dim}")
    total = sum(t.shape[dim] for t in ins)
    return [TensorType(first.shape[:dim] + (total,) + first.shape[dim + 1:], first.dtype)]


def _split_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    x = ins[0]
    dim = normalize_dim("split", ins, a["dim"], x.rank)
    if sum(a["sizes"]) != x.shape[dim] or any(n < 0 for n in a["sizes"]):
        raise_shape("split", ins, f"sizes {list(a['sizes'])} do not add up to dim {dim} ({x.shape[dim]})")
    return [TensorType(x.shape[:dim] + (n,) + x.shape[dim + 1:], x.dtype) for n in a["sizes"]]


def _slice_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    x = ins[0]
    dim = a["dim"]
    if not 0 <= dim < x.rank or a["step"] <= 0 or not 0 <= a["start"] <= a["end"]:
        raise_shape("slice", ins, f"[{a['start']}:{a['end']}:{a['step']}] on dim {dim} needs "
                                  "0 <= start <= end and step > 0")
    n = len(range(x.shape[dim])[a["start"]:a["end"]:a["step"]])  # an end past the size is clamped
    return [TensorType(x.shape[:dim] + (n,) + x.shape[dim + 1:], x.dtype)]


def _expand_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    x, shape = ins[0], tuple(a["shape"])
    padded = (1,) * (len(shape) - x.rank) + x.shape
    if len(shape) < x.rank or any(n != m and n != 1 for n, m in zip(padded, shape)):
        raise_shape("expand", ins, f"cannot broadcast to {list(shape)}")
    return [TensorType(shape, x.dtype)]


def _pad_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    x, pads = ins[0], a["pads"]
    if len(pads) % 2 or len(pads) // 2 > x.rank:
        raise_shape("pad", ins, f"pads {list(pads)} must be (before, after) pairs for at most {x.rank} dims")
    shape = list(x.shape)
    for i in range(len(pads) // 2):
        d = x.rank - 1 - i
        shape[d] += pads[2 * i] + pads[2 * i + 1]
        if a["mode"] != "constant" and max(pads[2 * i], pads[2 * i + 1]) > x.shape[d] - (a["mode"] == "reflect"):
            raise_shape("pad", ins, f"{a['mode']} padding is larger than dim {d}")
    if any(n <= 0 for n in shape):
        raise_shape("pad", ins, "negative padding removes the whole dim")
    if a["mode"] == "constant":
        scalar_fits("pad", ins, "value", a["value"])
    return [TensorType(tuple(shape), x.dtype)]


def slice_index(attrs: dict) -> tuple:
    """The getitem index that selects start:end:step along `dim`."""
    return (slice(None),) * attrs["dim"] + (slice(attrs["start"], attrs["end"], attrs["step"]),)


register_op(OpDef(
    name="reshape", inputs=("x",), category="shape", attrs={"shape": Attr("ints")},
    torch_call=lambda i, a: (torch.reshape, (i[0], a["shape"]), {}),
    infer_fn=_reshape_infer, traits=Trait.SHAPE_ONLY,
    doc="Static reshape (flatten, view, squeeze and unsqueeze all become this)."))

register_op(OpDef(
    name="permute", inputs=("x",), category="shape", attrs={"dims": Attr("ints")},
    torch_call=lambda i, a: (torch.permute, (i[0], a["dims"]), {}),
    infer_fn=_permute_infer, traits=Trait.SHAPE_ONLY,
    doc="Reorder dims (transpose becomes this)."))

register_op(OpDef(
    name="concat", inputs=("*xs",), category="shape", attrs={"dim": Attr("int")},
    torch_call=lambda i, a: (torch.cat, (list(i),), {"dim": a["dim"]}),
    infer_fn=_concat_infer, traits=Trait.SHAPE_ONLY,
    doc="Concatenate inputs along dim."))

register_op(OpDef(
    name="split", inputs=("x",), category="shape",
    attrs={"sizes": Attr("ints"), "dim": Attr("int")},
    torch_call=lambda i, a: (torch.split, (i[0], list(a["sizes"])), {"dim": a["dim"]}),
    num_outputs=lambda a: len(a["sizes"]),
    infer_fn=_split_infer, traits=Trait.SHAPE_ONLY,
    doc="Split along dim into pieces of the given sizes; one output per piece."))

register_op(OpDef(
    name="slice", inputs=("x",), category="shape",
    attrs={"dim": Attr("int"), "start": Attr("int"), "end": Attr("int"), "step": Attr("int", 1)},
    torch_call=lambda i, a: (operator.getitem, (i[0], slice_index(a)), {}),
    infer_fn=_slice_infer, traits=Trait.SHAPE_ONLY,
    doc="x[..., start:end:step] along dim (0 <= start <= end, step > 0; end clamps to the size)."))

register_op(OpDef(
    name="expand", inputs=("x",), category="shape", attrs={"shape": Attr("ints")},
    torch_call=lambda i, a: (torch.broadcast_to, (i[0], a["shape"]), {}),
    infer_fn=_expand_infer, traits=Trait.SHAPE_ONLY,
    doc="Broadcast to a static shape."))

register_op(OpDef(
    name="pad", inputs=("x",), category="shape",
    attrs={"pads": Attr("ints"), "mode": Attr("str", "constant",
                                               choices=("constant", "reflect", "replicate", "circular")),
           "value": Attr("float", 0.0)},
    torch_call=lambda i, a: (F.pad, (i[0], a["pads"]),
                             {"mode": a["mode"], "value": a["value"]} if a["mode"] == "constant"
                             else {"mode": a["mode"]}),
    infer_fn=_pad_infer, traits=Trait.SHAPE_ONLY,
    doc="Pad; pads in torch order (last dim first, (before, after) pairs)."))

register_op(OpDef(
    name="cast", inputs=("x",), category="shape", attrs={"dtype": Attr("dtype")},
    torch_call=lambda i, a: ("to", (i[0], a["dtype"]), {}),
    infer_fn=lambda ins, a: [TensorType(ins[0].shape, a["dtype"])], traits=Trait.ELEMENTWISE | Trait.CHANNEL_PRESERVING,
    doc="Convert to another dtype."))

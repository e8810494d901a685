"""Ops that carry weights: convolutions, linear layers, matmul, embedding."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from compiler.ir import TensorType
from compiler.ops.registry import Attr, OpDef, prod, register_op

_CONV = (F.conv1d, F.conv2d, F.conv3d)
_CONV_T = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)


def optional(inputs: list, index: int):
    return inputs[index] if index < len(inputs) else None


register_op(OpDef(
    name="conv", inputs=("x", "weight", "bias?"), category="nn",
    attrs={"stride": Attr("ints"), "padding": Attr("ints"), "dilation": Attr("ints"),
           "groups": Attr("int", 1)},
    torch_call=lambda i, a: (_CONV[len(a["stride"]) - 1], (i[0], i[1], optional(i, 2)),
                             {"stride": a["stride"], "padding": a["padding"],
                              "dilation": a["dilation"], "groups": a["groups"]}),
    macs_fn=lambda ins, outs, a: outs[0].numel * prod(ins[1].shape[1:]),
    doc="N-d convolution (rank from len(stride)); symmetric zero padding per spatial dim. "
        "Weight is [out, in/groups, *kernel]."))

register_op(OpDef(
    name="conv_transpose", inputs=("x", "weight", "bias?"), category="nn",
    attrs={"stride": Attr("ints"), "padding": Attr("ints"), "output_padding": Attr("ints"),
           "dilation": Attr("ints"), "groups": Attr("int", 1)},
    torch_call=lambda i, a: (_CONV_T[len(a["stride"]) - 1], (i[0], i[1], optional(i, 2)),
                             {"stride": a["stride"], "padding": a["padding"],
                              "output_padding": a["output_padding"], "groups": a["groups"],
                              "dilation": a["dilation"]}),
    macs_fn=lambda ins, outs, a: ins[0].numel * prod(ins[1].shape[1:]),
    doc="N-d transposed convolution. Weight is [in, out/groups, *kernel]."))


def _linear_infer(ins: list[TensorType | None], attrs: dict) -> list[TensorType]:
    x, w = ins[0], ins[1]
    if not x.shape or x.shape[-1] != w.shape[1] or len(w.shape) != 2:
        raise_shape("linear", ins)
    return [TensorType(x.shape[:-1] + (w.shape[0],), x.dtype)]


def raise_shape(op: str, ins: list[TensorType | None]):
    from compiler.errors import IRError
    shapes = ", ".join("None" if t is None else str(list(t.shape)) for t in ins)
    raise IRError(f"op '{op}' cannot take inputs of shape {shapes}")


register_op(OpDef(
    name="linear", inputs=("x", "weight", "bias?"), category="nn",
    torch_call=lambda i, a: (F.linear, (i[0], i[1], optional(i, 2)), {}),
    infer_fn=_linear_infer,
    macs_fn=lambda ins, outs, a: outs[0].numel * ins[1].shape[1],
    doc="y = x @ weight.T + bias over the last dim. Weight is [out, in]."))

register_op(OpDef(
    name="matmul", inputs=("a", "b"), category="nn",
    torch_call=lambda i, a: (torch.matmul, (i[0], i[1]), {}),
    macs_fn=lambda ins, outs, a: outs[0].numel * ins[0].shape[-1],
    doc="Batched matrix product with broadcasting over leading dims (torch.matmul)."))

register_op(OpDef(
    name="embedding", inputs=("indices", "weight"), category="nn",
    torch_call=lambda i, a: (F.embedding, (i[0], i[1]), {}),
    doc="Row lookup: weight[indices]. Weight is [num_embeddings, dim]."))

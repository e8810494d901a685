"""Ops that carry weights: convolutions, linear layers, matmul, embedding."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from compiler.ir import TensorType
from compiler.ops.interfaces import WeightLayout
from compiler.ops.registry import (INT32_MAX, NON_NEGATIVE, POSITIVE, Attr, OpDef, prod, raise_shape, register_op,
                                   same_dtype)

_CONV = (F.conv1d, F.conv2d, F.conv3d)
_CONV_T = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)


def optional(inputs: list, index: int):
    return inputs[index] if index < len(inputs) else None


def _conv_check(op: str, ins: list[TensorType | None], a: dict) -> None:
    x, w, b = ins[0], ins[1], optional(ins, 2)
    k = len(a["stride"])
    if any(len(a[key]) != k for key in ("padding", "dilation", "output_padding") if key in a):
        raise_shape(op, ins, f"stride, padding and dilation must each have {k} entries")
    if x.rank not in (k + 1, k + 2) or w.rank != k + 2:
        raise_shape(op, ins, f"expected a {k + 2}-d input and weight")
    same_dtype(op, ins)
    in_channels = w.shape[1] * a["groups"] if op == "conv" else w.shape[0]
    if x.shape[-k - 1] != in_channels:
        raise_shape(op, ins, f"input has {x.shape[-k - 1]} channels, the weight expects {in_channels}")
    if b is not None and b.shape != (w.shape[0] if op == "conv" else w.shape[1] * a["groups"],):
        raise_shape(op, ins, "bias does not match the output channels")


def _conv_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    x, w = ins[0], ins[1]
    k = len(a["stride"])
    _conv_check("conv", ins, a)
    spatial = []
    for i in range(k):
        size = (x.shape[-k + i] + 2 * a["padding"][i] - a["dilation"][i] * (w.shape[2 + i] - 1) - 1) \
            // a["stride"][i] + 1
        if size <= 0:
            raise_shape("conv", ins, "the kernel is larger than the padded input")
        spatial.append(size)
    if w.shape[0] % a["groups"]:
        raise_shape("conv", ins, "output channels are not divisible by groups")
    return [TensorType(x.shape[:-k - 1] + (w.shape[0],) + tuple(spatial), x.dtype)]


def _conv_transpose_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    x, w = ins[0], ins[1]
    k = len(a["stride"])
    _conv_check("conv_transpose", ins, a)
    spatial = tuple((x.shape[-k + i] - 1) * a["stride"][i] - 2 * a["padding"][i]
                    + a["dilation"][i] * (w.shape[2 + i] - 1) + a["output_padding"][i] + 1 for i in range(k))
    return [TensorType(x.shape[:-k - 1] + (w.shape[1] * a["groups"],) + spatial, x.dtype)]


def _matmul_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    x, y = ins
    if x.rank == 0 or y.rank == 0:
        raise_shape("matmul", ins, "scalars cannot be multiplied as matrices")
    xs = (1,) + x.shape if x.rank == 1 else x.shape
    ys = y.shape + (1,) if y.rank == 1 else y.shape
    if xs[-1] != ys[-2]:
        raise_shape("matmul", ins, f"inner dims {xs[-1]} and {ys[-2]} differ")
    try:
        batch = tuple(torch.broadcast_shapes(xs[:-2], ys[:-2]))
    except RuntimeError:
        raise_shape("matmul", ins, "batch dims do not broadcast")
    shape = batch + ((xs[-2],) if x.rank > 1 else ()) + ((ys[-1],) if y.rank > 1 else ())
    if x.dtype != y.dtype:
        raise_shape("matmul", ins, f"dtypes {x.dtype} and {y.dtype} differ")
    return [TensorType(shape, x.dtype)]


def _embedding_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    ids, w = ins
    if ids.dtype not in (torch.int64, torch.int32) or w.rank != 2:
        raise_shape("embedding", ins, "needs integer indices and a 2-d weight")
    return [TensorType(ids.shape + (w.shape[1],), w.dtype)]


register_op(OpDef(
    name="conv", inputs=("x", "weight", "bias?"), category="nn",
    attrs={"stride": POSITIVE, "padding": NON_NEGATIVE, "dilation": POSITIVE,
           "groups": Attr("int", 1, low=1, high=INT32_MAX)},
    torch_call=lambda i, a: (_CONV[len(a["stride"]) - 1], (i[0], i[1], optional(i, 2)),
                             {"stride": a["stride"], "padding": a["padding"],
                              "dilation": a["dilation"], "groups": a["groups"]}),
    infer_fn=_conv_infer,
    macs_fn=lambda ins, outs, a: outs[0].numel * prod(ins[1].shape[1:]),
    layout=WeightLayout(out_axis=0, in_axis=1, groups="groups", grouped_axis="in", spatial_attr="stride"),
    doc="N-d convolution (rank from len(stride)); symmetric zero padding per spatial dim. "
        "Weight is [out, in/groups, *kernel]."))

register_op(OpDef(
    name="conv_transpose", inputs=("x", "weight", "bias?"), category="nn",
    attrs={"stride": POSITIVE, "padding": NON_NEGATIVE, "output_padding": NON_NEGATIVE,
           "dilation": POSITIVE, "groups": Attr("int", 1, low=1, high=INT32_MAX)},
    torch_call=lambda i, a: (_CONV_T[len(a["stride"]) - 1], (i[0], i[1], optional(i, 2)),
                             {"stride": a["stride"], "padding": a["padding"],
                              "output_padding": a["output_padding"], "groups": a["groups"],
                              "dilation": a["dilation"]}),
    infer_fn=_conv_transpose_infer,
    macs_fn=lambda ins, outs, a: ins[0].numel * prod(ins[1].shape[1:]),
    layout=WeightLayout(out_axis=1, in_axis=0, groups="groups", grouped_axis="out", spatial_attr="stride",
                        transposed=True),
    doc="N-d transposed convolution. Weight is [in, out/groups, *kernel]."))


def _linear_infer(ins: list[TensorType | None], attrs: dict) -> list[TensorType]:
    x, w, b = ins[0], ins[1], optional(ins, 2)
    if not x.shape or len(w.shape) != 2 or x.shape[-1] != w.shape[1]:
        raise_shape("linear", ins, "the weight must be [out, in] with in == the input's last dim")
    if b is not None and b.shape != (w.shape[0],):
        raise_shape("linear", ins, "the bias must be [out]")
    same_dtype("linear", ins)
    return [TensorType(x.shape[:-1] + (w.shape[0],), x.dtype)]


register_op(OpDef(
    name="linear", inputs=("x", "weight", "bias?"), category="nn",
    torch_call=lambda i, a: (F.linear, (i[0], i[1], optional(i, 2)), {}),
    infer_fn=_linear_infer,
    macs_fn=lambda ins, outs, a: outs[0].numel * ins[1].shape[1],
    layout=WeightLayout(out_axis=0, in_axis=1),
    doc="y = x @ weight.T + bias over the last dim. Weight is [out, in]."))

register_op(OpDef(
    name="matmul", inputs=("a", "b"), category="nn",
    torch_call=lambda i, a: (torch.matmul, (i[0], i[1]), {}),
    infer_fn=_matmul_infer,
    macs_fn=lambda ins, outs, a: outs[0].numel * ins[0].shape[-1],
    layout=WeightLayout(out_axis=-1, in_axis=-2, bias=None),  # a weight when `b` is constant
    doc="Batched matrix product with broadcasting over leading dims (torch.matmul)."))

register_op(OpDef(
    name="embedding", inputs=("indices", "weight"), category="nn",
    torch_call=lambda i, a: (F.embedding, (i[0], i[1]), {}),
    infer_fn=_embedding_infer,
    layout=WeightLayout(out_axis=1, in_axis=None, bias=None, activations=(), row_axis=0, reduce_axis=1),
    doc="Row lookup: weight[indices]. Weight is [num_embeddings, dim]."))


def einsum_letters(equation: str, ins: list[TensorType | None]) -> tuple[dict[str, int], str]:
    """(size of each index letter, the output's letters) of an einsum equation; `...` counts as
    the broadcast batch dims, which always reach the output (numpy's and torch's convention)."""
    lhs, arrow, rhs = equation.replace(" ", "").partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ins):
        raise_shape("einsum", ins, f"'{equation}' names {len(terms)} operands")
    sizes: dict[str, int] = {}
    for term, t in zip(terms, ins):
        letters = term.replace("...", "")
        if len(letters) > t.rank or ("..." not in term and len(letters) != t.rank):
            raise_shape("einsum", ins, f"'{term}' does not fit a rank-{t.rank} operand")
        explicit = term.split("...")
        dims = list(t.shape[:len(explicit[0])]) + (list(t.shape[t.rank - len(explicit[1]):]) if len(explicit) > 1
                                                   and explicit[1] else [])
        for letter, n in zip(explicit[0] + (explicit[1] if len(explicit) > 1 else ""), dims):
            sizes[letter] = max(sizes.get(letter, 1), n)
    if not arrow:
        counts = {c: lhs.count(c) for c in sizes}
        rhs = "".join(sorted(c for c, k in counts.items() if k == 1))
    return sizes, rhs.replace("...", "")


def _einsum_macs(ins: list[TensorType | None], outs: list[TensorType], a: dict) -> int:
    """Output elements times the sizes summed over, for products of two or more operands."""
    if len(ins) < 2:
        return 0
    sizes, out = einsum_letters(a["equation"], ins)
    return outs[0].numel * prod(n for c, n in sizes.items() if c not in out)


register_op(OpDef(
    name="einsum", inputs=("*operands",), category="nn", attrs={"equation": Attr("str")},
    torch_call=lambda i, a: (torch.einsum, (a["equation"], *i), {}),
    macs_fn=_einsum_macs,
    doc="Einstein summation over the operands (torch.einsum / ONNX Einsum), e.g. 'abcd,cde->abe' for a "
        "dense layer over two dims; implicit output and '...' as in numpy."))

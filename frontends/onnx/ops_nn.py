"""ONNX ops with weights: Conv, ConvTranspose, Gemm, MatMul and the normalizations.

Padding the IR cannot express directly is made explicit and exact: asymmetric Conv pads (and
auto_pad SAME_*) become a zero `pad` before a symmetric `conv`; asymmetric ConvTranspose pads a
symmetric `conv_transpose` followed by a `slice` that crops the difference.
"""
from __future__ import annotations

from compiler.ir import Value
from frontends.onnx.context import OnnxNodeContext
from frontends.onnx.table import onnx_op


def _geometry(cx: OnnxNodeContext, x: Value, w: Value) -> tuple[int, list[int], list[int], list[int]]:
    k = w.rank - 2
    if k < 1 or x.rank != k + 2:
        raise cx.error(f"input {list(x.shape)} and weight {list(w.shape)} do not make a {max(k, 1)}-d "
                       "convolution (a batch dim is required)")
    kernel = cx.attr("kernel_shape", "ints", list(w.shape[2:]))
    if list(kernel) != list(w.shape[2:]):
        raise cx.error(f"kernel_shape {kernel} does not match the weight {list(w.shape)}")
    strides = cx.attr("strides", "ints", [1] * k)
    dilations = cx.attr("dilations", "ints", [1] * k)
    if len(strides) != k or len(dilations) != k or min(strides + dilations) < 1:
        raise cx.error(f"strides {strides} / dilations {dilations} do not fit a {k}-d kernel")
    return k, list(kernel), list(strides), list(dilations)


def same_pads(auto_pad: str, sizes, kernel, strides, dilations) -> tuple[list[int], list[int]]:
    """(begin, end) pads for auto_pad SAME_UPPER / SAME_LOWER: output size ceil(in / stride)."""
    begin, end = [], []
    for n, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max(0, (-(-n // s) - 1) * s + (k - 1) * d + 1 - n)
        small, large = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else large)
        end.append(large if auto_pad == "SAME_UPPER" else small)
    return begin, end


def explicit_pads(cx: OnnxNodeContext, x: Value, kernel, strides, dilations) -> tuple[list[int], list[int]]:
    k = len(kernel)
    auto_pad = cx.attr("auto_pad", "str", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return same_pads(auto_pad, x.shape[2:], kernel, strides, dilations)
    if auto_pad == "VALID":
        return [0] * k, [0] * k
    if auto_pad != "NOTSET":
        raise cx.unsupported(f"auto_pad '{auto_pad}'")
    pads = cx.attr("pads", "ints", [0] * 2 * k)
    if len(pads) != 2 * k or min(pads) < 0:
        raise cx.error(f"pads {pads} must be {2 * k} non-negative values")
    return list(pads[:k]), list(pads[k:])


def pad_asymmetric(cx: OnnxNodeContext, x: Value, begin: list[int], end: list[int]) -> tuple[Value, list[int]]:
    """Zero-pad what symmetric padding cannot express; returns the padded input and the symmetric
    padding left for the op itself."""
    sym = [min(b, e) for b, e in zip(begin, end)]
    extra = []
    for b, e, s in zip(reversed(begin), reversed(end), reversed(sym)):
        extra += [b - s, e - s]
    if any(extra):
        x = cx.emit("pad", [x], {"pads": tuple(extra)}, suffix="pad")
    return x, sym


@onnx_op("Conv", ir="conv (pad + conv for asymmetric pads)", note="1-3 spatial dims, groups, dilations, auto_pad")
def conv(cx: OnnxNodeContext):
    return conv_of(cx, cx.required(0), cx.required(1), cx.input(2))


def conv_of(cx: OnnxNodeContext, x: Value, w: Value, bias: Value | None, suffix: str = "") -> Value:
    """The node's Conv attributes applied to these operands (QLinearConv and ConvInteger share it)."""
    k, kernel, strides, dilations = _geometry(cx, x, w)
    begin, end = explicit_pads(cx, x, kernel, strides, dilations)
    x, sym = pad_asymmetric(cx, x, begin, end)
    return cx.emit("conv", [x, w, bias], {"stride": tuple(strides), "padding": tuple(sym),
                                          "dilation": tuple(dilations), "groups": cx.attr("group", "int", 1)},
                   suffix=suffix)


@onnx_op("ConvTranspose", ir="conv_transpose (+ slice for asymmetric pads)",
         note="output_shape and auto_pad become explicit pads")
def conv_transpose(cx: OnnxNodeContext):
    x, w, bias = cx.required(0), cx.required(1), cx.input(2)
    k, kernel, strides, dilations = _geometry(cx, x, w)
    groups = cx.attr("group", "int", 1)
    out_pad = list(cx.attr("output_padding", "ints", [0] * k))
    if len(out_pad) != k or min(out_pad) < 0:
        raise cx.error(f"output_padding {out_pad} must be {k} non-negative values")
    full = [(n - 1) * s + (kk - 1) * d + 1 + p for n, s, kk, d, p in zip(x.shape[2:], strides, kernel, dilations, out_pad)]
    auto_pad = cx.attr("auto_pad", "str", "NOTSET")
    output_shape = cx.attr("output_shape", "ints", None)
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        wanted = list(output_shape)[-k:] if output_shape is not None else [n * s for n, s in zip(x.shape[2:], strides)]
        if len(wanted) != k:
            raise cx.error(f"output_shape {output_shape} does not fit a {k}-d convolution")
        totals = [f - o for f, o in zip(full, wanted)]
        if min(totals) < 0:
            raise cx.unsupported(f"output_shape {wanted} larger than the full output {full}")
        upper = auto_pad == "SAME_UPPER"
        begin = [t // 2 if upper else t - t // 2 for t in totals]
        end = [t - b for t, b in zip(totals, begin)]
    else:
        begin, end = explicit_pads(cx, x, kernel, strides, dilations)
    sym = [min(b, e) for b, e in zip(begin, end)]
    # torch's output padding only reaches past a symmetric crop: extend it by the end-side surplus
    ir_out_pad = [max(0, p - (e - s)) for p, e, s in zip(out_pad, end, sym)]
    if any(p >= max(s, d) for p, s, d in zip(ir_out_pad, strides, dilations)):
        raise cx.unsupported(f"output_padding {out_pad} (at least the stride or dilation)")
    y = cx.emit("conv_transpose", [x, w, bias],
                {"stride": tuple(strides), "padding": tuple(sym), "output_padding": tuple(ir_out_pad),
                 "dilation": tuple(dilations), "groups": groups},
                suffix="full" if begin != end else "")
    for i, (b, e, s, f) in enumerate(zip(begin, end, sym, full)):
        if b != e:
            start = b - s
            y = cx.emit("slice", [y], {"dim": 2 + i, "start": start, "end": start + f - b - e},
                        suffix="" if all(bb == ee for bb, ee in zip(begin[i + 1:], end[i + 1:])) else f"crop{i}")
    return y


@onnx_op("Gemm", ir="linear (a static B), or matmul + add", note="alpha and beta fold into static weights")
def gemm(cx: OnnxNodeContext):
    a, b, c = cx.required(0), cx.required(1), cx.input(2)
    alpha, beta = cx.attr("alpha", "float", 1.0), cx.attr("beta", "float", 1.0)
    if a.rank != 2 or b.rank != 2:
        raise cx.error(f"Gemm needs 2-d A and B, got {list(a.shape)} and {list(b.shape)}")
    if cx.flag("transA", 0):
        a = cx.emit("permute", [a], {"dims": (1, 0)}, suffix="a_t")
    trans_b = cx.flag("transB", 0)
    if c is not None and beta != 1.0:
        c = cx.emit("mul", [c, cx.like(beta, c, "beta")], suffix="c_scaled")
    if c is not None and beta == 0.0:
        c = None
    if b.data is not None:  # weight [out, in], a transposed view when B is [in, out]
        weight = b if trans_b else cx.emit("permute", [b], {"dims": (1, 0)}, suffix="weight")
        if alpha != 1.0:
            weight = cx.emit("mul", [weight, cx.like(alpha, weight, "alpha")], suffix="weight_scaled")
        n = weight.shape[0]
        per_output = c is not None and (c.type.numel == 1 or (c.type.numel == n and c.shape[-1:] == (n,)))
        if c is None or (c.data is not None and per_output and c.dtype == weight.dtype):
            bias = None if c is None else cx.reshape(c, (c.type.numel,), suffix="bias")
            if bias is not None and bias.shape != (n,):
                bias = cx.emit("expand", [bias], {"shape": (n,)}, suffix="bias_n")
            return cx.emit("linear", [a, weight, bias])
        return cx.emit("add", [cx.emit("linear", [a, weight], suffix="linear"), c])
    if trans_b:
        b = cx.emit("permute", [b], {"dims": (1, 0)}, suffix="b_t")
    y = cx.emit("matmul", [a, b], suffix="matmul" if alpha != 1.0 or c is not None else "")
    if alpha != 1.0:
        y = cx.emit("mul", [y, cx.like(alpha, y, "alpha")], suffix="" if c is None else "scaled")
    return y if c is None else cx.emit("add", [y, c])


@onnx_op("MatMul", ir="matmul")
def matmul(cx: OnnxNodeContext):
    return cx.emit("matmul", [cx.required(0), cx.required(1)])


@onnx_op("BatchNormalization", ir="batch_norm", note="inference only; the training outputs are unavailable")
def batch_norm(cx: OnnxNodeContext):
    if cx.flag("training_mode", 0):
        raise cx.unsupported("training_mode=1")
    x = cx.x
    if x.rank < 2:
        raise cx.error(f"needs an input with a channel dim, got {list(x.shape)}")
    y = cx.emit("batch_norm", [x, cx.required(3, "mean"), cx.required(4, "var"), cx.required(1, "scale"),
                               cx.required(2, "bias")], {"eps": cx.attr("epsilon", "float", 1e-5)})
    return [y] + [None] * (len(cx.outputs) - 1)


@onnx_op("InstanceNormalization", ir="group_norm (one group per channel)")
def instance_norm(cx: OnnxNodeContext):
    x = cx.x
    if x.rank < 3:
        raise cx.error(f"needs (N, C, spatial...), got {list(x.shape)}")
    return cx.emit("group_norm", [x, cx.required(1, "scale"), cx.required(2, "bias")],
                   {"num_groups": x.shape[1], "eps": cx.attr("epsilon", "float", 1e-5)})


def _per(cx: OnnxNodeContext, v: Value | None, shape: tuple[int, ...], what: str) -> Value | None:
    """An affine parameter broadcast to exactly `shape` (static ones are expanded when needed)."""
    if v is None or v.shape == shape:
        return v
    if v.data is None:
        raise cx.unsupported(f"a run-time {what} of shape {list(v.shape)} (needs {list(shape)})")
    trimmed = cx.reshape(v, v.shape[v.rank - len(shape):] if v.rank > len(shape) else v.shape, suffix=f"{what}_r")
    return cx.emit("expand", [trimmed], {"shape": shape}, suffix=what)


@onnx_op("LayerNormalization", ir="layer_norm", note="Mean and InvStdDev outputs are unavailable")
def layer_norm(cx: OnnxNodeContext):
    x = cx.x
    axis = cx.normalize_axis(cx.attr("axis", "int", -1), x.rank)
    shape = x.shape[axis:]
    weight, bias = _per(cx, cx.required(1, "scale"), shape, "scale"), _per(cx, cx.input(2), shape, "bias")
    y = cx.emit("layer_norm", [x, weight, bias], {"normalized_shape": shape,
                                                  "eps": cx.attr("epsilon", "float", 1e-5)})
    return [y] + [None] * (len(cx.outputs) - 1)


@onnx_op("GroupNormalization", ir="group_norm", note="per-group scale and bias (opset 18) are repeated per channel")
def group_norm(cx: OnnxNodeContext):
    x, scale, bias = cx.x, cx.required(1, "scale"), cx.required(2, "bias")
    groups = cx.attr("num_groups", "int")
    if x.rank < 3 or groups < 1 or x.shape[1] % groups:
        raise cx.error(f"cannot split {list(x.shape)} into {groups} groups")
    c = x.shape[1]
    per_channel = []
    for v, what in ((scale, "scale"), (bias, "bias")):
        if v.shape == (groups,) and groups != c:
            v = cx.reshape(cx.emit("expand", [cx.reshape(v, (groups, 1), suffix=f"{what}_g")],
                                   {"shape": (groups, c // groups)}, suffix=f"{what}_e"), (c,), suffix=what)
        per_channel.append(v)
    return cx.emit("group_norm", [x, *per_channel], {"num_groups": groups, "eps": cx.attr("epsilon", "float", 1e-5)})


"""Pre-quantized ONNX models -> `fake_quant` with QuantAnnotations (markers in quantized.py).

    QuantizeLinear / DequantizeLinear      QDQ pairs -> fake_quant(x); stored int8 weights -> fake_quant(w)
    DynamicQuantizeLinear                  run-time uint8 scale and zero point, as ONNX computes them
    ConvInteger / MatMulInteger (+ Cast, * x_scale * w_scale)   conv / matmul of fake-quantized operands
    QLinearConv / QLinearMatMul            conv / matmul of fake-quantized operands, output requantized

8-bit integers, per tensor or per axis; blocked scales, 4/16-bit and float8 codes are refused.
"""
from __future__ import annotations

import torch

from compiler.ir import Value
from frontends.onnx.context import OnnxNodeContext
from frontends.onnx.ops_nn import conv_of
from frontends.onnx.quantized import Accumulator, Marker, Quantized, along, fake_quant
from frontends.onnx.table import onnx_op

_CODE_TYPES = (torch.int8, torch.uint8)


def _format(dtype: torch.dtype, zero_point: torch.Tensor | None) -> str:
    signed = dtype == torch.int8
    zero = zero_point is None or not bool(zero_point.any())
    return ("int8" if zero else "int8-asym") if signed else ("uint8-sym" if zero else "uint8")


def _params(cx: OnnxNodeContext, scale: Value, zero_point: Value | None, rank: int, code_dtype: torch.dtype | None = None):
    """(scale 0-d/1-d, float zero point or None, format, axis, code dtype) of a Q/DQ node's parameters."""
    if cx.attr("block_size", "int", 0):
        raise cx.unsupported("blocked scales (block_size)")
    if not scale.dtype.is_floating_point:
        raise cx.error(f"the scale must be floating point, got {scale.dtype}")
    dtype = zero_point.dtype if zero_point is not None else code_dtype or _output_dtype(cx)
    if dtype not in _CODE_TYPES:
        raise cx.unsupported(f"{dtype} codes (8-bit integers only)")
    per_axis = scale.type.numel > 1
    axis = cx.normalize_axis(cx.attr("axis", "int", 1), rank) if per_axis else None
    scale = scale if per_axis or scale.rank == 0 else cx.reshape(scale, (), suffix="scale")
    zp_data = None if zero_point is None else zero_point.data
    if zero_point is not None and zp_data is None:   # run-time (dynamic) zero point
        return scale, cx.cast(zero_point, scale.dtype, suffix="zp"), "uint8", axis, dtype
    fmt = _format(dtype, zp_data)
    zp = None if zp_data is None or fmt in ("int8", "uint8-sym") else \
        cx.constant(zp_data.to(scale.dtype).reshape(scale.shape), "zp")
    return scale, zp, fmt, axis, dtype


def _output_dtype(cx: OnnxNodeContext) -> torch.dtype:
    from frontends.onnx.tensors import torch_dtype
    code = cx.attr("output_dtype", "int", 0)
    return torch_dtype(code, "output_dtype") if code else torch.uint8


def _dequantize(cx: OnnxNodeContext, index: int, scale: Value, zero_point: Value | None, suffix: str) -> Value:
    """The float tensor an input's codes stand for: fake_quant of what a marker quantized, an
    annotated fake_quant of a stored (constant) tensor, or the arithmetic on run-time codes."""
    raw = cx.raw_input(index)
    if isinstance(raw, Quantized) and raw.matches(scale, zero_point):
        return raw.dequantized(cx)
    codes = cx.input(index)   # materializes a marker that does not match
    if codes.dtype == torch.int32 and codes.data is not None and scale.data is not None:  # a bias: stays float
        axis = cx.normalize_axis(cx.attr("axis", "int", 1), codes.rank) if scale.type.numel > 1 else None
        zp = 0 if zero_point is None else _broad(cx.static(2, "the zero point").double(), axis, codes.rank)
        real = (codes.data.double() - zp) * _broad(scale.data.double().reshape(-1) if axis is not None
                                                   else scale.data.double().reshape(()), axis, codes.rank)
        return cx.constant(real.to(scale.dtype), suffix or "real")
    scale, zp, fmt, axis, _ = _params(cx, scale, zero_point, codes.rank, codes.dtype)
    if codes.data is not None and scale.data is not None:
        real = (codes.data.to(torch.float32) - (0 if zp is None else _broad(zp.data, axis, codes.rank))) \
            * _broad(scale.data.float(), axis, codes.rank)
        return fake_quant(cx, cx.constant(real.to(scale.dtype), f"{suffix}_real"), scale, zp, fmt, axis, suffix)
    x = cx.cast(codes, scale.dtype, suffix=f"{suffix}_float")
    if zp is not None:
        x = cx.emit("sub", [x, along(cx, zp, axis, codes.rank, f"{suffix}_zp_b")], suffix=f"{suffix}_centered")
    return cx.emit("mul", [x, along(cx, scale, axis, codes.rank, f"{suffix}_scale_b")], suffix=suffix)


def _broad(t: torch.Tensor, axis: int | None, rank: int) -> torch.Tensor:
    if axis is None or t.dim() == 0:
        return t
    shape = [1] * rank
    shape[axis] = -1
    return t.reshape(shape)


@onnx_op("QuantizeLinear", ir="fake_quant (with the DequantizeLinear that reads it)",
         note="8-bit codes, per tensor or per axis; no blocked scales")
def quantize_linear(cx: OnnxNodeContext):
    x = cx.x
    scale, zp, fmt, axis, dtype = _params(cx, cx.required(1, "scale"), cx.input(2), x.rank)
    if x.dtype != scale.dtype:
        x = cx.cast(x, scale.dtype, suffix="x")
    return Quantized(x, scale, zp, fmt, axis, dtype)


@onnx_op("DequantizeLinear", ir="fake_quant", note="8-bit codes: a QDQ pair or a stored int8 weight")
def dequantize_linear(cx: OnnxNodeContext):
    return _dequantize(cx, 0, cx.required(1, "scale"), cx.input(2), "")


@onnx_op("DynamicQuantizeLinear", ir="reduce_min/max + fake_quant {uint8}",
         note="the scale and zero point are computed at run time, as ONNX defines them")
def dynamic_quantize_linear(cx: OnnxNodeContext):
    x = cx.x
    zero = cx.like(0.0, x, "zero")
    every = {"dims": tuple(range(x.rank))}
    lo = cx.emit("minimum", [cx.emit("reduce_min", [x], every, suffix="min"), zero], suffix="lo")
    hi = cx.emit("maximum", [cx.emit("reduce_max", [x], every, suffix="max"), zero], suffix="hi")
    scale = cx.emit("div", [cx.emit("sub", [hi, lo], suffix="range"), cx.like(255.0, x, "levels")], suffix="scale")
    zp = cx.emit("clip", [cx.emit("round", [cx.emit("div", [cx.emit("neg", [lo], suffix="neg_lo"), scale],
                                                     suffix="zp_div")], suffix="zp_round")],
                 {"min": 0.0, "max": 255.0}, suffix="zp")
    marker = Quantized(x, scale, zp, "uint8", None, torch.uint8)
    return [marker, scale, cx.cast(zp, torch.uint8, suffix="zp_u8")]


def _operand(cx: OnnxNodeContext, index: int, zp_index: int) -> tuple[Value, Value | None]:
    """(x - x_zp as floats, the scale that relates them to real values, if known)."""
    raw = cx.raw_input(index)
    if isinstance(raw, Quantized) and raw.axis is None:
        x_zp = cx.input(zp_index)   # a run-time one is DynamicQuantizeLinear's, which made `raw`
        if (x_zp is None and raw.zero_point is None) or \
                (x_zp is not None and (x_zp.data is None or raw.matches(raw.scale, x_zp))):
            return raw.dequantized(cx), raw.scale   # = scale * (codes - zp)
    codes = cx.input(index)
    x = cx.cast(codes, torch.float32, suffix=f"in{index}_float")
    zp = cx.input(zp_index)
    if zp is not None:
        x = cx.emit("sub", [x, cx.cast(zp, torch.float32, suffix=f"in{index}_zp")], suffix=f"in{index}_centered")
    return x, None


def _weight(cx: OnnxNodeContext, index: int, zp_index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    w = cx.required(index, "the weight")
    if w.data is None or w.dtype not in _CODE_TYPES:
        raise cx.unsupported(f"a {'run-time' if w.data is None else str(w.dtype)} weight (stored 8-bit codes only)")
    zp = cx.input(zp_index)
    zp_data = torch.zeros((), dtype=w.dtype) if zp is None else cx.static(zp_index, "the weight zero point")
    return w.data, zp_data, _format(w.dtype, zp_data)


@onnx_op("ConvInteger", "MatMulInteger", ir="conv / matmul of fake_quant operands (with the following * scale)",
         note="stored 8-bit weights; the int32 result is exact when not followed by Cast and * x_scale * w_scale")
def integer_op(cx: OnnxNodeContext):
    x, x_scale = _operand(cx, 0, 2)
    w, w_zp, w_fmt = _weight(cx, 1, 3)
    conv = cx.op_type == "ConvInteger"
    channel = 0 if conv else w.dim() - 1
    w_int = w.to(torch.float32) - _broad(w_zp.to(torch.float32), channel if w_zp.numel() > 1 else None, w.dim())
    apply = (lambda a, b: conv_of(cx, a, b, None, "real")) if conv else \
        (lambda a, b: cx.emit("matmul", [a, b], suffix="real"))
    return Accumulator(apply, x, x_scale, w_int, w_zp, w_fmt, channel)


def accumulator_rule(cx: OnnxNodeContext):
    """Cast and Mul that keep an Accumulator quantized, or None when the node does not."""
    if cx.op_type == "Cast" and isinstance(cx.raw_input(0), Accumulator):
        acc = cx.raw_input(0)
        from frontends.onnx.tensors import torch_dtype
        dtype = torch_dtype(cx.attr("to", "int"), "the Cast target")
        return Accumulator(acc.apply, acc.x, acc.x_scale, acc.w_int, acc.w_zero_point, acc.w_fmt, acc.w_channel,
                           dtype) if dtype.is_floating_point else None
    if cx.op_type != "Mul":
        return None
    for i in (0, 1):
        acc, other = cx.raw_input(i), cx.raw_input(1 - i)
        if isinstance(acc, Accumulator) and acc.dtype.is_floating_point and isinstance(other, Value):
            w_scale = _weight_scale(acc, other)
            if w_scale is not None:
                return acc.scaled(cx, w_scale)
    return None


def _weight_scale(acc: Accumulator, multiplier: Value) -> torch.Tensor | None:
    """c when the multiplier is x_scale * c with c a constant per tensor or per output channel."""
    node = multiplier.producer
    if acc.x_scale is None or node is None or node.op != "mul" or acc.x_scale not in node.inputs:
        return None
    c = node.inputs[1 - node.inputs.index(acc.x_scale)]
    channels = acc.w_int.shape[acc.w_channel]
    if c.data is None or c.data.numel() not in (1, channels):
        return None
    return c.data.float()


def _qlinear_output(cx: OnnxNodeContext, real: Value, scale_index: int) -> Quantized:
    scale, zp, fmt, axis, dtype = _params(cx, cx.required(scale_index, "y_scale"), cx.input(scale_index + 1),
                                          real.rank)
    if axis is not None:
        raise cx.unsupported("a per-axis output scale")
    return Quantized(real, scale, zp, fmt, axis, dtype)


def _qlinear_weight(cx: OnnxNodeContext, index: int, channel: int) -> Value:
    w = cx.required(index, "the weight")
    if w.data is None:
        raise cx.unsupported("a run-time weight")
    scale, zp = cx.required(index + 1, "the weight scale"), cx.input(index + 2)
    if scale.type.numel == 1:
        return _dequantize(cx, index, scale, zp, "w_fq")
    # per output channel: the op fixes the axis (QLinearConv has no axis attribute)
    s = cx.static(index + 1, "the weight scale").float().reshape(-1)
    z = torch.zeros((), dtype=w.dtype) if zp is None else cx.static(index + 2, "the weight zero point")
    fmt = _format(w.dtype, z)
    real = (w.data.float() - _broad(z.float().reshape(-1) if z.numel() > 1 else z.float(), channel, w.rank)) \
        * _broad(s, channel, w.rank)
    z_value = cx.constant(z.float().expand(s.shape).clone(), "w_zp") if fmt in ("int8-asym", "uint8") else None
    return fake_quant(cx, cx.constant(real, "w_real"), cx.constant(s, "w_scale"), z_value, fmt, channel, "w_fq")


@onnx_op("QLinearConv", ir="conv of fake_quant operands, requantized", note="stored 8-bit weights, per tensor or "
         "per output channel; the bias is folded with x_scale * w_scale")
def qlinear_conv(cx: OnnxNodeContext):
    x = _dequantize(cx, 0, cx.required(1, "x_scale"), cx.input(2), "x_fq")
    w = _qlinear_weight(cx, 3, 0)
    bias = cx.input(8)
    if bias is not None:
        x_scale, w_scale = cx.static(1, "x_scale").float(), cx.static(4, "w_scale").float()
        bias = cx.constant((cx.static(8, "the bias").double() * x_scale.double() * w_scale.double()).float(), "bias")
    return _qlinear_output(cx, conv_of(cx, x, w, bias, "real"), 6)


@onnx_op("QLinearMatMul", ir="matmul of fake_quant operands, requantized", note="per-tensor scales or a per-column "
         "weight scale")
def qlinear_matmul(cx: OnnxNodeContext):
    a = _dequantize(cx, 0, cx.required(1, "a_scale"), cx.input(2), "a_fq")
    b_raw = cx.required(3, "b")
    b = _qlinear_weight(cx, 3, b_raw.rank - 1) if b_raw.data is not None else \
        _dequantize(cx, 3, cx.required(4, "b_scale"), cx.input(5), "b_fq")
    return _qlinear_output(cx, cx.emit("matmul", [a, b], suffix="real"), 6)


__all__ = ["Marker", "accumulator_rule"]

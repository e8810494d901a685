"""`fake_quant` as ONNX QDQ: QuantizeLinear/DequantizeLinear pairs, or stored codes + DequantizeLinear.

A constant input (a weight) is stored quantized: an initializer of the format's ONNX type holding
the integer/minifloat codes, followed by DequantizeLinear. Any other input gets QuantizeLinear then
DequantizeLinear. What each format needs:

    format                 ONNX type              opset   scales
    int8, uint8            INT8 / UINT8           17      FLOAT (tensor, per axis; blocked: 21)
    int3, int5..int7 (u)   INT8 / UINT8 + clamp   17      range clamped before QuantizeLinear
    int4, uint4            INT4 / UINT4           21      FLOAT (tensor, per axis, blocked)
    fp8-e4m3, fp8-e5m2     FLOAT8E4M3FN / E5M2    19      FLOAT
    fp4-e2m1               FLOAT4E2M1             23      FLOAT
    mxfp4                  FLOAT4E2M1, block 32   23      FLOAT powers of two (23), FLOAT8E8M0 (24)
    nvfp4                  FLOAT4E2M1, block 16   23      FLOAT8E4M3FN codes dequantized by the FP32 tensor scale

Everything else (int2, fp4-e3m0, fp4-e1m2, fp6, other ExMy splits) raises BackendError naming
the node, the format and what ONNX can carry: never an approximation.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np
import torch
from onnx import TensorProto, numpy_helper

from backends.onnx.builder import OnnxBuilder
from backends.onnx.lowering import lowering
from compiler.ir import Node
from compiler.quant.formats import BlockFormat, FloatFormat, IntFormat, parse_format

EXPORTABLE = ("int3..int8 and uint3..uint8 (opset 17), int4/uint4 and blocked scales (opset 21), "
              "fp8-e4m3, fp8-e5m2 (opset 19), fp4-e2m1, mxfp4, nvfp4 (opset 23; E8M0 scales at 24)")
_FP_TYPES = {(4, 3): (TensorProto.FLOAT8E4M3FN, 19), (5, 2): (TensorProto.FLOAT8E5M2, 19),
             (2, 1): (TensorProto.FLOAT4E2M1, 23)}


def _initializer(b: OnnxBuilder, array: np.ndarray, tag: str) -> str:
    """An initializer of any ml_dtypes type (int4, float4, float8 ...), packed by onnx."""
    name = b.fresh(tag)
    proto = numpy_helper.from_array(np.ascontiguousarray(array), name)
    b.model.graph.initializer.append(proto)
    b.initializer_bytes += len(proto.raw_data)
    return name


def code_type(fmt) -> tuple[int, int] | None:
    """(ONNX element type, minimum opset) of a format's codes; None when no ONNX type carries it."""
    if isinstance(fmt, IntFormat):
        if fmt.bits == 2:
            return TensorProto.INT2 if fmt.signed else TensorProto.UINT2, 25
        if fmt.bits == 4:
            return TensorProto.INT4 if fmt.signed else TensorProto.UINT4, 21
        return TensorProto.INT8 if fmt.signed else TensorProto.UINT8, 17
    if isinstance(fmt, FloatFormat):
        return _FP_TYPES.get((fmt.exponent_bits, fmt.mantissa_bits))
    return TensorProto.FLOAT4E2M1, 23


def _requirements(b: OnnxBuilder, node: Node, fmt) -> tuple[int, int]:
    """(ONNX element type, minimum opset) of the codes, or BackendError."""
    need = code_type(fmt)
    if need is None:
        raise b.error(f"{fmt.name} has no ONNX tensor type", hint=f"ONNX QDQ carries {EXPORTABLE}")
    if node.attrs["block_size"] and need[1] < 21:
        need = (need[0], 21)
    if b.opset < need[1]:
        raise b.error(f"{fmt.name}{' with blocked scales' if node.attrs['block_size'] else ''} needs "
                      f"opset {need[1]}", hint=f"use target onnx{{opset={need[1]}}} or later; "
                      f"ONNX QDQ carries {EXPORTABLE}")
    return need


def _axis_attrs(node: Node) -> dict:
    axis, block = node.attrs["axis"], node.attrs["block_size"]
    if axis is None:
        return {}
    attrs = {"axis": axis % len(node.inputs[0].shape)}
    if block:
        attrs["block_size"] = block
    return attrs


def _const(node: Node, i: int) -> torch.Tensor | None:
    v = node.inputs[i] if i < len(node.inputs) else None
    return None if v is None else v.data


@lowering("fake_quant")
def fake_quant(b: OnnxBuilder, node: Node) -> None:
    fmt = parse_format(node.attrs["format"])
    qtype, _ = _requirements(b, node, fmt)
    x, scale_v = node.inputs[0], node.inputs[1]
    axis, block = node.attrs["axis"], node.attrs["block_size"]
    attrs = _axis_attrs(node)
    scale = b.value(scale_v) if (axis is not None or scale_v.shape == ()) else b.reshaped(scale_v, (), "scale")

    if isinstance(fmt, BlockFormat):
        scale = _block_scale(b, node, fmt, scale)
    zero_point = _zero_point(b, node, fmt)
    if x.data is not None and _const(node, 1) is not None:  # a weight: store the codes
        codes = fmt.encode(x.data.detach(), scale_v.data.detach(), _const(node, 2), axis=axis,
                           block_size=block, **({"tensor_scale": _const(node, 3)}
                                                if isinstance(fmt, BlockFormat) else {}))
        stored = _initializer(b, codes, "codes")
        if isinstance(fmt, BlockFormat) and fmt.scale_format == "e8m0" and b.opset >= 24:
            attrs["output_dtype"] = TensorProto.FLOAT  # else the output takes the E8M0 scale's type
        b.emit("DequantizeLinear", [stored, scale] + ([zero_point] if zero_point else []), [b.y(node)],
               **attrs)
        return
    source = b.x(node)
    if isinstance(fmt, IntFormat) and fmt.bits not in (2, 4, 8):
        source = _clamp_to_range(b, node, fmt, source)
    q_attrs = dict(attrs)
    if not zero_point:
        if b.opset < 21:  # before output_dtype, a zero point of the code type selects it
            zero_point = _initializer(b, _zeros(qtype, scale_v.shape if axis is not None else ()),
                                      "zero_point")
        else:
            q_attrs["output_dtype"] = qtype
    codes = b.emit("QuantizeLinear", [source, scale, zero_point] if zero_point else [source, scale],
                   **q_attrs)
    b.emit("DequantizeLinear", [codes, scale, zero_point] if zero_point else [codes, scale], [b.y(node)],
           **attrs)


def _zeros(qtype: int, shape: tuple[int, ...]) -> np.ndarray:
    dtype = {TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8,
             TensorProto.FLOAT8E4M3FN: ml_dtypes.float8_e4m3fn,
             TensorProto.FLOAT8E5M2: ml_dtypes.float8_e5m2}[qtype]
    return np.zeros(shape, dtype=dtype)


def _zero_point(b: OnnxBuilder, node: Node, fmt) -> str:
    zp = _const(node, 2)
    if not isinstance(fmt, IntFormat) or node.inputs[2:3] in ([], [None]):
        return ""
    if zp is None:  # computed at run time (dynamic quantization): cast to the codes' type
        if fmt.bits != 8:
            raise b.error(f"a run-time zero point of {fmt.name} cannot be exported", hint="ONNX casts to 8-bit codes only")
        v = node.inputs[2]
        return b.cast(b.value(v), v.dtype, torch.int8 if fmt.signed else torch.uint8)
    zp = zp.detach()
    if node.attrs["axis"] is None:
        zp = zp.reshape(())
    return _initializer(b, zp.numpy().astype(np.int32).astype(fmt.numpy_dtype), "zero_point")


def _block_scale(b: OnnxBuilder, node: Node, fmt: BlockFormat, scale: str) -> str:
    """MXFP4: E8M0 codes from opset 24 (the FP32 powers of two before). NVFP4: E4M3 codes
    dequantized by the FP32 tensor scale, so the effective scale is computed as our kernel does."""
    data = _const(node, 1)
    if fmt.scale_format == "e8m0":
        if b.opset < 24 or data is None:
            return scale
        return _initializer(b, data.detach().numpy().astype(ml_dtypes.float8_e8m0fnu), "scale_e8m0")
    tensor_scale = node.inputs[3] if len(node.inputs) > 3 else None
    if data is None or tensor_scale is None:
        raise b.error("nvfp4 needs constant E4M3 block scales and a tensor scale")
    codes = _initializer(b, data.detach().numpy().astype(ml_dtypes.float8_e4m3fn), "scale_e4m3")
    return b.emit("DequantizeLinear", [codes, b.reshaped(tensor_scale, (), "tensor_scale")])


def _clamp_to_range(b: OnnxBuilder, node: Node, fmt: IntFormat, source: str) -> str:
    """Widths with no ONNX type ride in INT8/UINT8: clamping x / s to [qmin - zp, qmax - zp]
    before rounding equals clamping the rounded codes (the bounds are integers)."""
    from compiler.quant.kernels import expand_scale

    x, scale, zp = node.inputs[0], _const(node, 1), _const(node, 2)
    if scale is None or (len(node.inputs) > 2 and node.inputs[2] is not None and zp is None):
        raise b.error(f"{fmt.name} needs constant scales to be exported")
    meta = torch.empty(x.shape, device="meta")
    s = expand_scale(scale.detach(), meta, node.attrs["axis"], node.attrs["block_size"]) \
        if scale.dim() else scale.detach()
    z = 0.0 if zp is None else (expand_scale(zp.detach(), meta, node.attrs["axis"], node.attrs["block_size"])
                                if zp.dim() else zp.detach())
    lo = ((fmt.qmin - z) * s).to(x.dtype)
    hi = ((fmt.qmax - z) * s).to(x.dtype)
    return b.emit("Min", [b.emit("Max", [source, b.tensor(lo, "lo")]), b.tensor(hi, "hi")])

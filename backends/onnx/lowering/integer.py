"""The integer form's ops (compiler/ops/integer.py) as exact ONNX: equal to the interpreter bit for bit.

    quantize     QuantizeLinear (+ Clip for a narrower code range); int32 codes: Div, Round, Clip, Cast
    dequantize   DequantizeLinear; int64 or zero-pointed int32 input: Sub, Cast, Mul
    requantize   the fixed-point rule in int64: Mul, Div (floor, whatever the runtime's integer
                 division rounds to), the remainder compared with 2^(shift-1), round half to even
    int_conv     ConvInteger + Add (int32 bias)
    int_linear   MatMulInteger (transposed weight) + Add
    int_matmul   MatMulInteger

These are the reference lowering (`onnx{quant=exact}`). backends/onnx/qdq.py exports the same
graph in the QDQ form onnxruntime fuses into integer kernels (`quant=qdq`, the default).
"""
from __future__ import annotations

import torch

from backends.onnx.builder import OnnxBuilder, onnx_dtype
from backends.onnx.lowering.registry import lowering, per_spatial_dim, spatial_rank
from compiler.ir import Node, Value

_TYPE_RANGE = {torch.int8: (-128, 127), torch.uint8: (0, 255)}


def _opt(node: Node, i: int) -> Value | None:
    return node.inputs[i] if i < len(node.inputs) else None


def _axis_shape(node: Node, rank: int, length: int) -> list[int]:
    """Shape broadcasting a per-channel parameter along the node's axis (or a scalar)."""
    axis = node.attrs.get("axis")
    if axis is None or length == 1:
        return []
    shape = [1] * rank
    shape[axis % rank] = -1
    return shape


def param(b: OnnxBuilder, node: Node, i: int, rank: int, dtype: torch.dtype) -> str:
    """A per-tensor or per-channel constant input as an initializer that broadcasts."""
    v = node.inputs[i]
    t = v.data.detach().to(dtype)
    return b.tensor(t.reshape(_axis_shape(node, rank, t.numel()) or ([] if t.numel() == 1 else [-1])),
                    v.name.rsplit(".", 1)[-1])


def _scale_zp(b: OnnxBuilder, node: Node, code_dtype: torch.dtype, with_zero_point: bool = True) -> list[str]:
    """[scale, zero point] for QuantizeLinear/DequantizeLinear: 1-d along `axis` or 0-d."""
    scale = node.inputs[1].data.detach().float()
    zp_v = _opt(node, 2)
    zp = zp_v.data.detach() if zp_v is not None else torch.zeros_like(scale)
    if node.attrs["axis"] is None:
        scale, zp = scale.reshape(()), zp.reshape(())
    names = [b.tensor(scale, "scale")]
    return names + [b.tensor(zp.to(code_dtype), "zero_point")] if with_zero_point else names


@lowering("quantize")
def quantize(b: OnnxBuilder, node: Node) -> None:
    a, x = node.attrs, node.inputs[0]
    dtype, axis = a["dtype"], a["axis"]
    if dtype in _TYPE_RANGE:
        q_attrs = {"axis": axis % x.rank} if axis is not None else {}
        full = (a["qmin"], a["qmax"]) == _TYPE_RANGE[dtype]
        q = b.emit("QuantizeLinear", [b.x(node)] + _scale_zp(b, node, dtype), [b.y(node)] if full else None,
                   **q_attrs)
        if not full:
            b.emit("Clip", [q, b.scalar(a["qmin"], dtype, "qmin"), b.scalar(a["qmax"], dtype, "qmax")], [b.y(node)])
        return
    rank = x.rank
    y = b.emit("Round", [b.emit("Div", [b.x(node), param(b, node, 1, rank, torch.float32)])])
    if _opt(node, 2) is not None:
        y = b.emit("Add", [y, param(b, node, 2, rank, torch.float32)])
    y = b.emit("Clip", [y, b.scalar(float(a["qmin"]), torch.float32, "qmin"),
                        b.scalar(float(a["qmax"]), torch.float32, "qmax")])
    b.emit("Cast", [y], [b.y(node)], to=onnx_dtype(dtype))


@lowering("dequantize")
def dequantize(b: OnnxBuilder, node: Node) -> None:
    q, axis = node.inputs[0], node.attrs["axis"]
    if q.dtype in _TYPE_RANGE or (q.dtype == torch.int32 and _opt(node, 2) is None):
        attrs = {"axis": axis % q.rank} if axis is not None else {}
        ins = _scale_zp(b, node, q.dtype, with_zero_point=q.dtype in _TYPE_RANGE)
        b.emit("DequantizeLinear", [b.x(node)] + ins, [b.y(node)], **attrs)
        return
    centred = b.cast(b.x(node), q.dtype, torch.int64)
    if _opt(node, 2) is not None:
        centred = b.emit("Sub", [centred, param(b, node, 2, q.rank, torch.int64)])
    b.emit("Mul", [b.emit("Cast", [centred], to=onnx_dtype(torch.float32)),
                   param(b, node, 1, q.rank, torch.float32)], [b.y(node)])


@lowering("requantize")
def requantize(b: OnnxBuilder, node: Node) -> None:
    """y = f + (r > h) + (r == h) * (f mod 2), with f = floor(p / 2^n), r = p - f 2^n, h = 2^(n-1)."""
    x, a = node.inputs[0], node.attrs
    rank = x.rank
    i64 = torch.int64
    p = b.cast(b.x(node), x.dtype, i64)
    if _opt(node, 3) is not None:
        p = b.emit("Sub", [p, param(b, node, 3, rank, i64)])
    p = b.emit("Mul", [p, param(b, node, 1, rank, i64)])
    shift = node.inputs[2].data.detach().to(i64)
    shape = _axis_shape(node, rank, shift.numel()) or ([] if shift.numel() == 1 else [-1])
    step = b.tensor(torch.pow(2, shift).to(i64).reshape(shape), "two_pow_shift")
    half = b.tensor(torch.pow(2, shift - 1).to(i64).reshape(shape), "half")
    d = b.emit("Div", [p, step])
    r = b.emit("Sub", [p, b.emit("Mul", [d, step])])
    negative = b.emit("Cast", [b.emit("Less", [r, b.scalar(0, i64, "zero")])], to=onnx_dtype(i64))
    f = b.emit("Sub", [d, negative])                                   # floor for either rounding of Div
    r = b.emit("Add", [r, b.emit("Mul", [negative, step])])
    above = b.emit("Cast", [b.emit("Greater", [r, half])], to=onnx_dtype(i64))
    tie = b.emit("Cast", [b.emit("Equal", [r, half])], to=onnx_dtype(i64))
    odd = b.emit("Mod", [f, b.scalar(2, i64, "two")])
    y = b.emit("Add", [b.emit("Add", [f, above]), b.emit("Mul", [tie, odd])])
    if _opt(node, 4) is not None:
        y = b.emit("Add", [y, param(b, node, 4, rank, i64)])
    y = b.emit("Clip", [y, b.scalar(a["qmin"], i64, "qmin"), b.scalar(a["qmax"], i64, "qmax")])
    b.emit("Cast", [y], [b.y(node)], to=onnx_dtype(a["dtype"]))


def _zero_point(b: OnnxBuilder, node: Node, i: int, dtype: torch.dtype) -> str:
    v = _opt(node, i)
    if v is None:
        return ""
    t = v.data.detach()
    return b.tensor(t.to(dtype).reshape(-1 if t.dim() else ()), "zero_point")


def _with_bias(b: OnnxBuilder, node: Node, acc: str, channel_axis_from_end: int) -> None:
    bias = _opt(node, 2)
    if bias is None:
        b.emit("Identity", [acc], [b.y(node)])
        return
    shape = [-1] + [1] * (-channel_axis_from_end - 1)
    b.emit("Add", [acc, b.reshaped(bias, shape, "bias")], [b.y(node)])


@lowering("int_conv")
def int_conv(b: OnnxBuilder, node: Node) -> None:
    a, k = node.attrs, spatial_rank(b, node, "stride")
    x, w = node.inputs[0], node.inputs[1]
    x_zp = _zero_point(b, node, 3, x.dtype) or b.scalar(0, x.dtype, "x_zero_point")
    w_zp = _opt(node, 4)
    conv = dict(kernel_shape=list(w.shape[2:]), strides=per_spatial_dim(a["stride"], k), pads=per_spatial_dim(a["padding"], k) * 2,
                dilations=per_spatial_dim(a["dilation"], k), group=a["groups"])
    per_channel = w_zp is not None and w_zp.data.numel() > 1
    zps = [x_zp] + ([_zero_point(b, node, 4, w.dtype)] if w_zp is not None and not per_channel else [])
    acc = b.emit("ConvInteger", [b.x(node), b.x(node, 1)] + zps, **conv)
    if per_channel:  # onnxruntime takes one weight zero point: conv(x, w - z) = conv(x, w) - z_c conv(x, 1)
        ones = b.tensor(torch.ones(w.shape, dtype=w.dtype), "ones")
        window_sums = b.emit("ConvInteger", [b.x(node), ones, x_zp], **conv)
        z = b.tensor(w_zp.data.detach().to(torch.int32).reshape([-1] + [1] * k), "w_zero_point")
        acc = b.emit("Sub", [acc, b.emit("Mul", [window_sums, z])])
    _with_bias(b, node, acc, -k - 1)


@lowering("int_linear")
def int_linear(b: OnnxBuilder, node: Node) -> None:
    x, w = node.inputs[0], node.inputs[1]
    wt = b.tensor(w.data.detach().t().contiguous(), "weight_t") if w.data is not None \
        else b.emit("Transpose", [b.value(w)], perm=[1, 0])
    zps = [_zero_point(b, node, 3, x.dtype), _zero_point(b, node, 4, w.dtype)]
    if zps[1] and not zps[0]:
        zps[0] = b.scalar(0, x.dtype, "x_zero_point")
    acc = b.emit("MatMulInteger", [b.x(node), wt] + [z for z in zps if z])
    _with_bias(b, node, acc, -1)


@lowering("int_matmul")
def int_matmul(b: OnnxBuilder, node: Node) -> None:
    a_t, b_t = node.inputs[0], node.inputs[1]
    zps = [_zero_point(b, node, 2, a_t.dtype), _zero_point(b, node, 3, b_t.dtype)]
    if zps[1] and not zps[0]:
        zps[0] = b.scalar(0, a_t.dtype, "a_zero_point")
    b.emit("MatMulInteger", [b.x(node), b.x(node, 1)] + [z for z in zps if z], [b.y(node)])

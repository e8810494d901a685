"""`fake_quant`: quantize then dequantize a tensor, for every format of compiler.quant.formats.

    y = fake_quant(x, scale, zero_point?, tensor_scale?) {format="int8", axis=None, block_size=0}

The scale layout follows ONNX QuantizeLinear: 0-d per tensor; 1-d along `axis` per channel; with
`block_size`, the input's rank with ceil(d / block_size) entries along `axis` (per group, MXFP4,
NVFP4). `zero_point` (same layout as the scale) only for asymmetric integer formats;
`tensor_scale` (0-d) only for NVFP4. The reference is one call into compiler/quant/kernels.py.
"""
from __future__ import annotations

import torch

from compiler.ir import TensorType
from compiler.ops.registry import Attr, OpDef, raise_shape, register_op
from compiler.quant.formats import BlockFormat, FormatError, parse_format


def _opt(items: list, i: int):
    return items[i] if i < len(items) else None


def _torch_call(i: list, a: dict):
    fmt = parse_format(a["format"])
    return fmt.call(i[0], i[1], _opt(i, 2), _opt(i, 3), axis=a["axis"], block_size=a["block_size"])


def expected_scale_shape(x_shape: tuple[int, ...], axis: int | None, block_size: int) -> tuple[int, ...]:
    if axis is None:
        return ()
    axis = axis % len(x_shape)
    if not block_size:
        return (x_shape[axis],)
    return tuple(-(-d // block_size) if k == axis else d for k, d in enumerate(x_shape))


def _infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    x, scale, zp, ts = ins[0], ins[1], _opt(ins, 2), _opt(ins, 3)
    try:
        fmt = parse_format(a["format"])
    except FormatError as exc:
        raise_shape("fake_quant", ins, str(exc))
    axis, block = a["axis"], a["block_size"]
    if not x.dtype.is_floating_point or not scale.dtype.is_floating_point:
        raise_shape("fake_quant", ins, "x and scale must be floating point")
    for t in (scale, ts):  # a wider scale would widen the result past its declared type
        if t is not None and torch.promote_types(x.dtype, t.dtype) != x.dtype:
            raise_shape("fake_quant", ins, f"a {t.dtype} scale would widen the {x.dtype} input")
    if axis is not None and not -x.rank <= axis < x.rank:
        raise_shape("fake_quant", ins, f"axis {axis} is out of range for rank {x.rank}")
    if block < 0 or (block and axis is None):
        raise_shape("fake_quant", ins, "block_size needs an axis and must be positive")
    if isinstance(fmt, BlockFormat) and (block != fmt.block_size or axis is None):
        raise_shape("fake_quant", ins, f"{fmt.name} needs blocks of {fmt.block_size} along an axis")
    want = expected_scale_shape(x.shape, axis, block)
    if scale.shape != want and not (axis is None and scale.numel == 1 and scale.rank <= 1):
        raise_shape("fake_quant", ins, f"scale must have shape {list(want)}")
    if zp is not None and (not fmt.has_zero_point or zp.shape != scale.shape):
        raise_shape("fake_quant", ins, f"{fmt.name} takes no zero point" if not fmt.has_zero_point
                    else "the zero point must have the scale's shape")
    if ts is not None and (fmt.name != "nvfp4" or ts.numel != 1):
        raise_shape("fake_quant", ins, "only nvfp4 takes a (scalar) tensor scale")
    return [x]


register_op(OpDef(
    name="fake_quant", inputs=("x", "scale", "zero_point?", "tensor_scale?"), category="quant",
    foldable=False,
    attrs={"format": Attr("str", doc="int2..int8, uint2..uint8, fpN-eXmY, mxfp4, nvfp4"),
           "axis": Attr("int?", None, doc="channel/block axis; None for per tensor"),
           "block_size": Attr("int", 0, doc="elements per scale along axis; 0 for per channel")},
    torch_call=_torch_call, infer_fn=_infer,
    doc="Quantize-dequantize x to a number format (compiler/quant/formats.py) at the given scale "
        "(per tensor, per channel along axis, or per block of block_size)."))

"""The integer form's ops (docs/integer-form.md): explicit integer arithmetic for quantized graphs.

    q   = quantize(x, scale, zero_point?)          {qmin, qmax, axis, dtype}   float -> codes
    x   = dequantize(q, scale, zero_point?)        {axis}                      codes -> float32
    y   = requantize(x, m, shift, x_zp?, zp?)      {qmin, qmax, axis, dtype}   int -> int, fixed point
    acc = int_conv(x, w, bias?, x_zp?, w_zp?)      {stride, padding, dilation, groups}   -> int32
    acc = int_linear(x, w, bias?, x_zp?, w_zp?)                                          -> int32
    acc = int_matmul(a, b, a_zp?, b_zp?)                                                 -> int32

Zero points are int32 constants (0-d, or 1-d along `axis`); scales float32; multipliers and
shifts int32. The references are the torch-only kernels of compiler/quant/integer.py, exact on
integer tensors. `integerize` (passes/integerize/) produces these ops.
"""
from __future__ import annotations

import torch

from compiler.ir import TensorType
from compiler.ops.interfaces import Trait, WeightLayout
from compiler.ops.nn import _conv_infer, _linear_infer, _matmul_infer
from compiler.ops.registry import Attr, OpDef, prod, raise_shape, register_op
from compiler.quant import integer as k

CODE_DTYPES = (torch.int8, torch.uint8, torch.int16, torch.int32)
_RANGE = {torch.int8: (-2**7, 2**7 - 1), torch.uint8: (0, 2**8 - 1), torch.int16: (-2**15, 2**15 - 1),
          torch.int32: (-2**31, 2**31 - 1)}


def _opt(items: list, i: int):
    return items[i] if i < len(items) else None


def _range_problems(a: dict) -> list[str]:
    lo, hi = _RANGE.get(a["dtype"], (None, None))
    if lo is None:
        return [f"dtype must be one of {[str(d) for d in CODE_DTYPES]}, got {a['dtype']}"]
    if not lo <= a["qmin"] <= a["qmax"] <= hi:
        return [f"[qmin, qmax] = [{a['qmin']}, {a['qmax']}] must lie inside {a['dtype']}'s [{lo}, {hi}]"]
    return []


def _check_params(op: str, ins: list, x: TensorType, axis: int | None, params: list) -> None:
    """Per-tensor (0-d or one element) or per-channel (1-d of the axis' size) parameters."""
    for t in params:
        if t is None:
            continue
        if axis is None:
            if t.numel != 1:
                raise_shape(op, ins, "per-tensor parameters must have one element")
        elif not (-x.rank <= axis < x.rank) or t.shape not in ((x.shape[axis],), ()):
            raise_shape(op, ins, f"per-channel parameters must have shape [{x.shape[axis % x.rank]}]"
                        if -x.rank <= axis < x.rank else f"axis {axis} is out of range")


def _quantize_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    x = ins[0]
    if not x.dtype.is_floating_point:
        raise_shape("quantize", ins, "x must be floating point")
    _check_params("quantize", ins, x, a["axis"], ins[1:])
    return [TensorType(x.shape, a["dtype"])]


def _dequantize_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    q = ins[0]
    if q.dtype.is_floating_point:
        raise_shape("dequantize", ins, "q must be an integer tensor")
    _check_params("dequantize", ins, q, a["axis"], ins[1:])
    return [TensorType(q.shape, torch.float32)]


def _requantize_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    x = ins[0]
    if x.dtype.is_floating_point or x.dtype == torch.bool:
        raise_shape("requantize", ins, "x must be an integer tensor")
    _check_params("requantize", ins, x, a["axis"], ins[1:])
    return [TensorType(x.shape, a["dtype"])]


def _int_inputs(op: str, ins: list, count: int) -> None:
    for t in ins[:count]:
        if t is not None and (t.dtype.is_floating_point or t.dtype == torch.bool):
            raise_shape(op, ins, "operands must be integer codes")


def _as_int32(infer, op: str, count: int):
    def wrapped(ins: list[TensorType | None], a: dict) -> list[TensorType]:
        _int_inputs(op, ins, count)
        float_types = [None if t is None else TensorType(t.shape, torch.float32) for t in ins[:count]]
        bias = [None if ins[2] is None else TensorType(ins[2].shape, torch.float32)] \
            if op != "int_matmul" and len(ins) > 2 else []  # int32 at s_x*s_w: checked as the layer's own
        (out,) = infer(float_types + bias, a)
        return [TensorType(out.shape, torch.int32)]
    return wrapped


_QUANT_ATTRS = {"qmin": Attr("int", doc="smallest code"), "qmax": Attr("int", doc="largest code"),
                "axis": Attr("int?", None, doc="channel axis of per-channel parameters"),
                "dtype": Attr("dtype", torch.int8, doc="storage type of the result")}

register_op(OpDef(
    name="quantize", inputs=("x", "scale", "zero_point?"), category="quant", foldable=False,
    attrs=dict(_QUANT_ATTRS),
    torch_call=lambda i, a: (k.quantize_codes, (i[0], i[1], _opt(i, 2)),
                             {"qmin": a["qmin"], "qmax": a["qmax"], "axis": a["axis"], "dtype": a["dtype"]}),
    infer_fn=_quantize_infer, verify_fn=lambda ins, a: _range_problems(a),
    traits=Trait.ELEMENTWISE | Trait.CHANNEL_PRESERVING,
    doc="Float to integer codes: clamp(round_half_even(x / scale) + zero_point, qmin, qmax) "
        "(ONNX QuantizeLinear)."))

register_op(OpDef(
    name="dequantize", inputs=("q", "scale", "zero_point?"), category="quant", foldable=False,
    attrs={"axis": Attr("int?", None, doc="channel axis of per-channel parameters")},
    torch_call=lambda i, a: (k.dequantize_codes, (i[0], i[1], _opt(i, 2)), {"axis": a["axis"]}),
    infer_fn=_dequantize_infer, traits=Trait.ELEMENTWISE | Trait.CHANNEL_PRESERVING,
    doc="Integer codes to float32: (q - zero_point) * scale (ONNX DequantizeLinear)."))

register_op(OpDef(
    name="requantize", inputs=("x", "multiplier", "shift", "x_zero_point?", "zero_point?"), category="quant",
    foldable=False, attrs=dict(_QUANT_ATTRS),
    torch_call=lambda i, a: (k.requantize_fixed, (i[0], i[1], i[2], _opt(i, 3), _opt(i, 4)),
                             {"qmin": a["qmin"], "qmax": a["qmax"], "axis": a["axis"], "dtype": a["dtype"]}),
    infer_fn=_requantize_infer, verify_fn=lambda ins, a: _range_problems(a),
    traits=Trait.ELEMENTWISE | Trait.CHANNEL_PRESERVING,
    doc="Integer to integer at a new scale: clamp(round_half_even((x - x_zero_point) * multiplier / "
        "2^shift) + zero_point, qmin, qmax), in int64."))

register_op(OpDef(
    name="int_conv", inputs=("x", "weight", "bias?", "x_zero_point?", "w_zero_point?"), category="quant",
    attrs={"stride": Attr("ints"), "padding": Attr("ints"), "dilation": Attr("ints"), "groups": Attr("int", 1)},
    torch_call=lambda i, a: (k.int_conv, (i[0], i[1], _opt(i, 2), _opt(i, 3), _opt(i, 4)),
                             {"stride": a["stride"], "padding": a["padding"], "dilation": a["dilation"],
                              "groups": a["groups"]}),
    infer_fn=_as_int32(_conv_infer, "int_conv", 2),
    macs_fn=lambda ins, outs, a: outs[0].numel * prod(ins[1].shape[1:]),
    layout=WeightLayout(out_axis=0, in_axis=1, groups="groups", grouped_axis="in", spatial_attr="stride"),
    doc="Integer N-d convolution: int32 accumulator of conv(x - x_zero_point, weight - w_zero_point) + bias "
        "(bias int32 at scale s_x * s_w; w_zero_point per tensor or per output channel)."))

register_op(OpDef(
    name="int_linear", inputs=("x", "weight", "bias?", "x_zero_point?", "w_zero_point?"), category="quant",
    torch_call=lambda i, a: (k.int_linear, (i[0], i[1], _opt(i, 2), _opt(i, 3), _opt(i, 4)), {}),
    infer_fn=_as_int32(_linear_infer, "int_linear", 2),
    macs_fn=lambda ins, outs, a: outs[0].numel * ins[1].shape[1],
    layout=WeightLayout(out_axis=0, in_axis=1),
    doc="Integer linear layer: int32 accumulator of (x - x_zero_point) @ (weight - w_zero_point).T + bias."))

register_op(OpDef(
    name="int_matmul", inputs=("a", "b", "a_zero_point?", "b_zero_point?"), category="quant",
    torch_call=lambda i, a: (k.int_matmul, (i[0], i[1], _opt(i, 2), _opt(i, 3)), {}),
    infer_fn=_as_int32(_matmul_infer, "int_matmul", 2),
    macs_fn=lambda ins, outs, a: outs[0].numel * ins[0].shape[-1],
    layout=WeightLayout(out_axis=-1, in_axis=-2, bias=None),
    doc="Integer batched matmul: int32 accumulator of (a - a_zero_point) @ (b - b_zero_point)."))

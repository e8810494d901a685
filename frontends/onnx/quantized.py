"""Integer tensors of pre-quantized ONNX models, kept as what they quantize.

A QDQ model stores `DequantizeLinear(QuantizeLinear(x))`; onnxruntime's dynamic quantization
leaves `Cast(MatMulInteger(DynamicQuantizeLinear(x), W)) * (x_scale * w_scale)`. nnforge has no
integer tensors in its float IR: it keeps the quantized form as `fake_quant` nodes with a
QuantAnnotation, which the rest of the compiler can re-target. So the translator binds such
integer tensors to markers instead of Values:

* `Quantized`: codes = quantize(real, scale, zero point); a consumer that dequantizes with the
  same parameters gets `fake_quant(real)`, and the first such consumer creates it.
* `Accumulator`: the int32 result of ConvInteger / MatMulInteger, = op(x codes - zp, w - w_zp); a
  `Mul` by `x_scale * w_scale` turns it into op(fake_quant(x), fake_quant(w)) with w's scale known.

Any other consumer reads the integer tensor itself: `materialize` computes it exactly with float
ops (round, clip, cast), so a model that does something else with its codes still imports.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch

from compiler.ir import Value
from compiler.quant import QuantAnnotation, parse_format

if TYPE_CHECKING:
    from frontends.onnx.context import OnnxNodeContext


class Marker:
    """An ONNX tensor the translator holds in quantized form (not yet an IR Value)."""

    def materialize(self, cx: "OnnxNodeContext") -> Value:  # pragma: no cover - abstract
        raise NotImplementedError


def along(cx: "OnnxNodeContext", v: Value, axis: int | None, rank: int, suffix: str) -> Value:
    """A per-tensor (0-d) or per-axis (1-d) parameter shaped to broadcast against a rank-`rank` tensor."""
    if axis is None or v.rank == 0:
        return v
    shape = [1] * rank
    shape[axis] = v.shape[0]
    return cx.reshape(v, shape, suffix=suffix)


def fake_quant(cx: "OnnxNodeContext", real: Value, scale: Value, zero_point: Value | None, fmt: str, axis: int | None,
               suffix: str) -> Value:
    """An annotated fake_quant node (never folded: it marks the format, even of a constant weight)."""
    has_zp = parse_format(fmt).has_zero_point
    inputs = [real, scale] + ([zero_point] if has_zp else [])
    node = cx.graph.create_node("fake_quant", inputs, {"format": fmt, "axis": axis}, name=cx.name(suffix),
                                source=cx.source)
    node.output.annotate(QuantAnnotation(
        format=fmt, granularity="tensor" if axis is None else "channel", axis=axis, scale=scale.name,
        zero_point=zero_point.name if has_zp else None, role="weight" if real.data is not None else "activation"))
    return node.output


@dataclass(eq=False)
class Quantized(Marker):
    real: Value                   # the float tensor the codes quantize
    scale: Value                  # float, 0-d or 1-d along `axis`
    zero_point: Value | None      # float, the scale's shape; None for zero
    fmt: str                      # int8, int8-asym, uint8, uint8-sym
    axis: int | None
    dtype: torch.dtype            # the codes' dtype
    _dequantized: Value | None = field(default=None, repr=False)
    _codes: Value | None = field(default=None, repr=False)

    def matches(self, scale: Value, zero_point: Value | None) -> bool:
        """Whether a DequantizeLinear with these parameters undoes exactly this quantization."""
        return _same(scale, self.scale) and _same_zero_point(zero_point, self.zero_point)

    def dequantized(self, cx: "OnnxNodeContext") -> Value:
        if self._dequantized is None:
            self._dequantized = fake_quant(cx, self.real, self.scale, self.zero_point, self.fmt, self.axis, "fq")
        return self._dequantized

    def materialize(self, cx: "OnnxNodeContext") -> Value:
        """The integer codes: clip(round(real / scale) + zero point) in the codes' dtype."""
        if self._codes is None:
            fmt = parse_format(self.fmt)
            rank = self.real.rank
            q = cx.emit("round", [cx.emit("div", [self.real, along(cx, self.scale, self.axis, rank, "q_scale")],
                                          suffix="q_div")], suffix="q_round")
            if self.zero_point is not None:
                q = cx.emit("add", [q, along(cx, self.zero_point, self.axis, rank, "q_zp")], suffix="q_shift")
            q = cx.emit("clip", [q], {"min": float(fmt.qmin), "max": float(fmt.qmax)}, suffix="q_clip")
            self._codes = cx.cast(q, self.dtype, suffix="codes")
        return self._codes


@dataclass(eq=False)
class Accumulator(Marker):
    """int32 op(x - x_zp, w - w_zp) of ConvInteger / MatMulInteger, waiting for its scale."""

    apply: Callable[[Value, Value], Value]   # (x operand, weight operand) -> the op's result
    x: Value                                 # x - x_zp as floats, fake-quantized when x_scale is known
    x_scale: Value | None                    # then the result is x_scale * accumulator
    w_int: torch.Tensor                      # w - w_zp as floats (exact integers)
    w_zero_point: torch.Tensor
    w_fmt: str
    w_channel: int                           # the weight's output-channel axis
    dtype: torch.dtype = torch.int32         # float32 after a Cast
    _value: Value | None = field(default=None, repr=False)

    def scaled(self, cx: "OnnxNodeContext", w_scale: torch.Tensor) -> Value:
        """x_scale * accumulator * w_scale: the op on fake_quant(x) and fake_quant(w)."""
        per_channel = w_scale.numel() > 1
        s = w_scale.reshape(-1) if per_channel else w_scale.reshape(())
        shape = [1] * self.w_int.dim()
        if per_channel:
            shape[self.w_channel] = -1
        real = cx.constant((self.w_int * s.reshape(shape)).to(torch.float32), "w_real")
        scale = cx.constant(s.to(torch.float32), "w_scale")
        zp = cx.constant(self.w_zero_point.to(torch.float32).reshape(s.shape), "w_zp") \
            if parse_format(self.w_fmt).has_zero_point else None
        w = fake_quant(cx, real, scale, zp, self.w_fmt, self.w_channel if per_channel else None, "w_fq")
        return self.apply(self.x, w)

    def materialize(self, cx: "OnnxNodeContext") -> Value:
        if self._value is None:
            acc = self.apply(self.x, cx.constant(self.w_int.to(torch.float32), "w_int"))
            if self.x_scale is not None:
                acc = cx.emit("round", [cx.emit("div", [acc, self.x_scale], suffix="acc_div")], suffix="acc")
            self._value = cx.cast(acc, self.dtype, suffix="int")
        return self._value


def _same(a: Value | None, b: Value | None) -> bool:
    if a is b:
        return True
    if a is None or b is None or a.data is None or b.data is None:
        return False
    return a.data.numel() == b.data.numel() and bool(torch.equal(a.data.float().reshape(-1), b.data.float().reshape(-1)))


def _same_zero_point(a: Value | None, b: Value | None) -> bool:
    zero = lambda v: v is None or (v.data is not None and not bool(v.data.any()))  # noqa: E731
    return (zero(a) and zero(b)) or _same(a, b)

"""How a float value of the fake-quant graph is held in integers, and the nodes that convert it.

A `Rep` says: the float value v equals (value - zero_point) * scale, clamped to [lo, hi], after
replaying the `pending` nodes (max pools and shape-only ops moved past a requantization, which
they commute with). The `Emitter` creates the integer nodes and their constants in front of the
node being lowered, and annotates every integer result with its `IntAnnotation`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from compiler.errors import NNForgeError
from compiler.ir import Graph, Node, Value
from compiler.quant.fixed_point import FixedPointError, fixed_point
from compiler.quant.int_annotation import IntAnnotation

INT32 = (-2**31, 2**31 - 1)
INT64 = (-2**63, 2**63 - 1)


class IntegerizeError(NNForgeError):
    """The graph has no integer form as it is (a format, a granularity or an op)."""


@dataclass(frozen=True)
class Rep:
    value: Value                       # the integer tensor (codes, int32 accumulator, wide int32/int64)
    scale: torch.Tensor                # float64, 0-d or 1-d along `axis`
    axis: int | None = None            # channel axis of a per-channel scale
    zero_point: int = 0
    qmin: int = INT32[0]               # the code range (codes); the int32 range otherwise
    qmax: int = INT32[1]
    lo: float | None = None            # pending real-valued clamp (relu, relu6, clip)
    hi: float | None = None
    pending: tuple[Node, ...] = field(default=())   # max_pool / shape-only nodes still to replay

    @property
    def per_tensor(self) -> bool:
        return self.scale.dim() == 0

    def clamped(self, lo: float | None, hi: float | None) -> "Rep":
        new_lo = lo if self.lo is None else (self.lo if lo is None else max(self.lo, lo))
        new_hi = hi if self.hi is None else (self.hi if hi is None else min(self.hi, hi))
        return replace(self, lo=new_lo, hi=new_hi)

    def min_scale(self) -> float:
        return float(self.scale.min())


def _code_bounds(rep_lo, rep_hi, scale: float, zero_point: int, qmin: int, qmax: int) -> tuple[int, int]:
    """A real clamp [lo, hi] as code bounds at (scale, zero point): monotone rounding commutes with it."""
    if rep_lo is not None:  # Python's round() is half to even, as the quantizers round
        qmin = max(qmin, round(rep_lo / scale) + zero_point)
    if rep_hi is not None:
        qmax = min(qmax, round(rep_hi / scale) + zero_point)
    return qmin, max(qmin, qmax)


class Emitter:
    """Creates integer nodes before `self.before` (the node being lowered)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.before: Node | None = None
        self._dequantized: dict[Value, Value] = {}

    # ---- constants and nodes ------------------------------------------------------------
    def const(self, name: str, tensor: torch.Tensor) -> Value:
        return self.graph.add_constant(name, tensor)

    def node(self, op: str, inputs: list, attrs: dict, name: str) -> Value:
        source = self.before.source if self.before is not None else ""
        return self.graph.create_node(op, inputs, attrs, name=name, before=self.before, source=source).output

    def annotate(self, v: Value, scale: Value, zero_point: Value | None, axis: int | None, fmt: str) -> Value:
        v.annotate(IntAnnotation(format=fmt, scale=scale.name, zero_point=zero_point.name if zero_point else None,
                                 axis=axis))
        return v

    def zp_const(self, stem: str, zp: int) -> Value | None:
        return self.const(f"{stem}.zero_point", torch.tensor(zp, dtype=torch.int32)) if zp else None

    # ---- conversions ----------------------------------------------------------------------
    def requantize(self, rep: Rep, scale: torch.Tensor, zero_point: int, qmin: int, qmax: int,
                   dtype: torch.dtype, stem: str, fmt: str) -> Rep:
        """`rep` at a new per-tensor scale: one requantize node (pending clamp folded into its
        bounds), then the pending nodes replayed on the result."""
        if rep.per_tensor is False and scale.dim() != 0:
            raise IntegerizeError(f"{stem}: per-channel to per-channel requantization is not supported")
        qmin, qmax = _code_bounds(rep.lo, rep.hi, float(scale), zero_point, qmin, qmax)
        factor = rep.scale.double() / scale.double()
        try:
            m, n = fixed_point(factor)
        except FixedPointError as exc:
            raise IntegerizeError(f"{stem}: {exc}",
                                  hint="the scales of consecutive quantizers are more than 2^30 apart") from None
        axis = rep.axis % rep.value.rank if rep.axis is not None and factor.dim() else None
        inputs = [rep.value, self.const(f"{stem}.multiplier", m), self.const(f"{stem}.shift", n),
                  self.zp_const(f"{stem}.x", rep.zero_point), self.zp_const(stem, zero_point)]
        while inputs[-1] is None:
            inputs.pop()
        out = self.node("requantize", inputs, {"qmin": qmin, "qmax": qmax, "axis": axis, "dtype": dtype},
                        f"{stem}.requant")
        scale_v = self.const(f"{stem}.scale", scale.float())
        self.annotate(out, scale_v, self.zp_const(f"{stem}.out", zero_point), None, fmt)
        result = Rep(out, scale.double(), None, zero_point, qmin, qmax)
        return self.replay(result, rep.pending)

    def replay(self, rep: Rep, pending: tuple[Node, ...]) -> Rep:
        value = rep.value
        for node in pending:
            inputs = [value] + [v for v in node.inputs[1:]]
            value = self.node(node.op, inputs, dict(node.attrs), f"{node.name}.int")
            value.annotations.update(rep.value.annotations)
        return replace(rep, value=value, pending=())

    def materialize(self, rep: Rep, stem: str) -> Rep:
        """`rep` with its pending clamp applied and pending nodes replayed (a per-channel scale
        through a shape change is first brought to one scale)."""
        if rep.lo is None and rep.hi is None and not rep.pending:
            return rep
        if rep.pending and not rep.per_tensor:
            return self.to_wide(rep, torch.tensor(rep.min_scale(), dtype=torch.float64), stem)
        value = rep.value
        if rep.lo is not None or rep.hi is not None:  # integer bounds inside the real ones
            lo = None if rep.lo is None else torch.ceil(rep.lo / rep.scale).to(torch.int64) + rep.zero_point
            hi = None if rep.hi is None else torch.floor(rep.hi / rep.scale).to(torch.int64) + rep.zero_point
            value = self._clamp(rep, value, lo, hi, stem)
        return self.replay(replace(rep, value=value, lo=None, hi=None), rep.pending)

    def _clamp(self, rep: Rep, value: Value, lo: torch.Tensor | None, hi: torch.Tensor | None, stem: str) -> Value:
        shape = [1] * value.rank
        if rep.axis is not None and not rep.per_tensor:
            shape[rep.axis % value.rank] = -1
        for bound, op in ((lo, "maximum"), (hi, "minimum")):
            if bound is not None:
                c = self.const(f"{stem}.{op}", bound.to(value.dtype).reshape(shape if bound.dim() else []))
                out = self.node(op, [value, c], {}, f"{stem}.{op}")
                out.annotations.update(value.annotations)
                value = out
        return value

    def to_wide(self, rep: Rep, scale: torch.Tensor, stem: str) -> Rep:
        """`rep` as int32 at a fine per-tensor scale (residual adds, concat, float-island inputs)."""
        if rep.per_tensor and rep.zero_point == 0 and float(rep.scale) == float(scale) \
                and rep.value.dtype == torch.int32:
            return self.materialize(rep, stem)
        return self.requantize(rep, scale, 0, *INT32, torch.int32, f"{stem}.wide", "int32")

    def dequantize(self, source: Value, rep: Rep) -> Value:
        """The float value `rep` holds (once per value): the float-island and graph-output boundary."""
        if source in self._dequantized:
            return self._dequantized[source]
        rep = self.materialize(rep, source.name)
        axis = rep.axis % rep.value.rank if rep.axis is not None and not rep.per_tensor else None
        scale = self.const(f"{source.name}.int_scale", rep.scale.float())
        inputs = [rep.value, scale, self.zp_const(source.name, rep.zero_point)]
        out = self.node("dequantize", [v for v in inputs if v is not None], {"axis": axis}, f"{source.name}.dequant")
        self._dequantized[source] = out
        return out

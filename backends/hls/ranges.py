"""Proven value ranges of an integer graph, and the overflow check on calibration data.

Every integer value of the integer form gets the interval of values it can take for ANY input
(interval arithmetic over the graph: a quantize yields [qmin, qmax]; a conv row sums the worst
case of each product plus its bias; a requantize maps its input interval through its own integer
formula; adds add, concats join, sums multiply by their count). The design's bit widths come from
these intervals, so no stream, accumulator or intermediate of the C++ can overflow.

Where an interval passes the tensor's own container (an int32 accumulator of a very long dot
product, an int32 residual add), the reference itself could overflow: `check_calibration` then
runs those nodes on the calibration data in wide arithmetic and reports a layer that does, with
the range it reached, instead of writing a design that silently wraps.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from compiler.errors import BackendError
from compiler.ir import Graph, Node, Value
from compiler.ops import get_op
from compiler.quant.integer import broadcast_along

PASS_THROUGH = frozenset({"max_pool", "reshape", "permute", "slice", "expand"})
CONTAINER = {torch.int8: (-2**7, 2**7 - 1), torch.uint8: (0, 255), torch.int16: (-2**15, 2**15 - 1),
             torch.int32: (-2**31, 2**31 - 1), torch.int64: (-2**63, 2**63 - 1)}


@dataclass(frozen=True)
class Interval:
    lo: int
    hi: int

    def __or__(self, other: "Interval") -> "Interval":
        return Interval(min(self.lo, other.lo), max(self.hi, other.hi))


def requantize_int(x: int, m: int, shift: int, x_zp: int, zp: int, qmin: int, qmax: int) -> int:
    """One element of `requantize` in Python integers (round half to even, then clamp)."""
    p = (x - x_zp) * m
    f = p >> shift
    r = p - (f << shift)
    half = 1 << (shift - 1)
    y = f + (r > half) + (r == half and f & 1 == 1)
    return min(max(y + zp, qmin), qmax)


def _ints(t: torch.Tensor | None, n: int, default: int = 0) -> list[int]:
    """A per-tensor or per-channel parameter as n Python ints."""
    if t is None:
        return [default] * n
    flat = [int(v) for v in t.reshape(-1).tolist()]
    return flat * n if len(flat) == 1 else flat


def _opt(node: Node, i: int) -> torch.Tensor | None:
    v = node.inputs[i] if i < len(node.inputs) else None
    return None if v is None else v.data


def requantize_interval(node: Node, x: Interval) -> Interval:
    channels = max(_opt(node, 1).numel(), _opt(node, 2).numel())
    m, shift = _ints(_opt(node, 1), channels), _ints(_opt(node, 2), channels)
    xz, zp = _ints(_opt(node, 3), channels), _ints(_opt(node, 4), channels)
    q = node.attrs["qmin"], node.attrs["qmax"]
    ends = [requantize_int(v, m[c], shift[c], xz[c], zp[c], *q) for c in range(channels) for v in (x.lo, x.hi)]
    return Interval(min(ends), max(ends))


def centred_weight_matrix(node: Node) -> torch.Tensor:
    """The layer's weight minus its zero point, as int64 rows [out, in/g * kernel]."""
    w = get_op(node.op).layout.weight_value(node).data.to(torch.int64)
    wz = _opt(node, 4)
    if wz is not None:
        w = w - broadcast_along(wz.to(torch.int64), w.dim(), 0)
    return w.reshape(w.shape[0], -1)


def row_bounds(node: Node, x: Interval) -> tuple[torch.Tensor, torch.Tensor]:
    """Per output channel, the least and greatest accumulator over every input in `x` (padding
    and skipped products contribute 0, so every partial sum lies inside as well)."""
    w = centred_weight_matrix(node)
    xz = int(_opt(node, 3).reshape(-1)[0]) if _opt(node, 3) is not None else 0
    d_lo, d_hi = x.lo - xz, x.hi - xz
    a, b = w * d_lo, w * d_hi
    zero = torch.zeros_like(a)
    lo = torch.minimum(torch.minimum(a, b), zero).sum(1)
    hi = torch.maximum(torch.maximum(a, b), zero).sum(1)
    bias = get_op(node.op).layout.bias_value(node)
    if bias is not None:
        lo, hi = lo + bias.data.to(torch.int64), hi + bias.data.to(torch.int64)
    return lo, hi


def static_ranges(graph: Graph) -> dict[Value, Interval]:
    """The proven interval of every integer value (float values and unsupported ops are absent)."""
    ranges: dict[Value, Interval] = {}

    def of(v: Value | None) -> Interval | None:
        if v is None:
            return None
        if v in ranges:
            return ranges[v]
        if v.data is not None and not v.dtype.is_floating_point and v.data.numel():
            return Interval(int(v.data.min()), int(v.data.max()))
        return None

    for node in graph.nodes:
        ins = [of(v) for v in node.inputs]
        out = _interval(node, ins)
        if out is not None:
            ranges[node.output] = out
    return ranges


def _interval(node: Node, ins: list[Interval | None]) -> Interval | None:
    op, x = node.op, ins[0] if ins else None
    if op == "quantize":
        return Interval(node.attrs["qmin"], node.attrs["qmax"])
    if x is None:
        return None
    if op == "requantize":
        return requantize_interval(node, x)
    if op in ("int_conv", "int_linear"):
        lo, hi = row_bounds(node, x)
        return Interval(int(lo.min()), int(hi.max()))
    if op in PASS_THROUGH:
        return x
    if op == "pad":         # edge modes copy values; a constant pad adds its value
        return x if node.attrs["mode"] != "constant" else x | Interval(int(node.attrs["value"]), int(node.attrs["value"]))
    if op == "add" and ins[1] is not None:
        return Interval(x.lo + ins[1].lo, x.hi + ins[1].hi)
    if op == "concat" and all(i is not None for i in ins):
        out = ins[0]
        for i in ins[1:]:
            out = out | i
        return out
    if op == "reduce_sum":
        n = 1
        for d in node.attrs["dims"]:
            n *= node.inputs[0].shape[d]
        return Interval(x.lo * n, x.hi * n)
    if op in ("maximum", "minimum") and ins[1] is not None:
        pick = max if op == "maximum" else min
        return Interval(pick(x.lo, ins[1].lo), pick(x.hi, ins[1].hi))
    return None


def may_overflow(node: Node, ranges: dict[Value, Interval]) -> bool:
    """Whether the proven interval of the node's result passes its tensor's container."""
    r = ranges.get(node.outputs[0]) if len(node.outputs) == 1 else None
    box = CONTAINER.get(node.outputs[0].dtype) if node.outputs else None
    return r is not None and box is not None and not (box[0] <= r.lo and r.hi <= box[1])


def _wide(node: Node, args: list) -> torch.Tensor:
    """The node's exact result before it is cast to its container (int64 / float64)."""
    if node.op == "add":
        return args[0].to(torch.int64) + args[1].to(torch.int64)
    x = args[0].to(torch.float64)
    x_zero_point = args[3] if len(args) > 3 else None
    if x_zero_point is not None:
        x = x - x_zero_point.to(torch.float64).reshape(())
    w = centred_weight_matrix(node).to(torch.float64).reshape(get_op(node.op).layout.weight_value(node).shape)
    if node.op == "int_linear":
        acc = F.linear(x, w)
    else:
        a = node.attrs
        conv = (F.conv1d, F.conv2d, F.conv3d)[len(a["stride"]) - 1]
        acc = conv(x, w, None, stride=a["stride"], padding=a["padding"], dilation=a["dilation"], groups=a["groups"])
    if len(args) > 2 and args[2] is not None:
        acc = acc + broadcast_along(args[2].to(torch.float64), acc.dim(), 1)
    return acc


def check_calibration(graph: Graph, ranges: dict[Value, Interval], batches: list) -> dict[str, list[int]]:
    """Run the graph on calibration batches; every node whose proven interval passes its container
    is recomputed wide and must stay inside it. Returns {value: [min, max] reached} for those."""
    risky = [n for n in graph.nodes if may_overflow(n, ranges)]
    if not risky or not batches:
        return {}
    wanted = set(risky)
    reached: dict[Node, list[int]] = {}
    with torch.no_grad():
        for batch in batches:
            env = dict(zip(graph.inputs, batch))
            for node in graph.nodes:
                args = [None if v is None else (v.data if v.data is not None else env[v]) for v in node.inputs]
                if node in wanted and node.op in ("add", "int_conv", "int_linear"):
                    wide = _wide(node, args)
                    lo, hi = int(wide.min()), int(wide.max())
                    seen = reached.setdefault(node, [lo, hi])
                    seen[0], seen[1] = min(seen[0], lo), max(seen[1], hi)
                env.update(zip(node.outputs, get_op(node.op).run(args, node.attrs)))
    for node, (lo, hi) in reached.items():
        box = CONTAINER[node.output.dtype]
        if lo < box[0] or hi > box[1]:
            raise BackendError(
                f"layer '{node.name}' ({node.op}) overflows its {node.output.dtype} result on the calibration "
                f"data: it reaches [{lo}, {hi}], outside [{box[0]}, {box[1]}]",
                where=node.source or node.name,
                hint="quantize it to fewer bits or narrower activations, or split the dot product")
    return {node.output.name: seen for node, seen in reached.items()}

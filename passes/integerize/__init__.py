"""integerize: a fake-quant graph (int2..int8 weights and activations) as explicit integer arithmetic.

    fold-bn, quantize{weights=int8, activations=int8}, integerize{fraction-bits=16, skip=[...]}

The result is nnforge's integer form (docs/integer-form.md): weight codes, int32 biases at scale
s_x * s_w, int32 accumulators (`int_conv`, `int_linear`, `int_matmul`), fixed-point `requantize`
to the next quantizer's codes (ReLU/ReLU6/clip folded into its bounds, max pools, reshapes and
edge pads moved past it, which they commute with, and quantizers of graph inputs moved in front of the shape
ops and edge pads that follow them), residual adds and concats in int32 at a common fine scale
(the next quantizer's scale / 2^fraction-bits), global average pools as integer sums. Ops with no
integer rule (softmax, GELU, normalization, ...) stay float islands between explicit `dequantize`
and the next `quantize`. Against the fake-quant graph it came from, a quantized value differs by
at most one code (tests/test_integerize.py); the interpreter runs it exactly. A weight's
`SparsityAnnotation` (simd-sparsify) moves to its codes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import torch

from compiler.context import DEFAULT_CONTEXT, PassContext
from compiler.ir import Graph, Node, Value
from compiler.names import layer_names, matching_pattern
from compiler.ops import get_op
from compiler.options import option
from compiler.passes import Pass, PassResult, register_pass
from compiler.tiling import EDGE_PADDING
from passes.integerize.layers import INT_LAYERS, int_format, lower_layer, storage_dtype
from passes.integerize.rep import INT32, Emitter, IntegerizeError, Rep
from passes.integerize.scales import common_scale

COMMUTING = frozenset({"max_pool", "reshape", "permute", "slice", "expand"})  # replayed after requantize
MEAN_OPS = frozenset({"adaptive_avg_pool", "reduce_mean"})


@register_pass("integerize")
@dataclass(frozen=True)
class Integerize(Pass):
    """Quantized graph (int2..int8) to integer arithmetic: codes, int32 accumulators, fixed-point requantization."""

    exact: ClassVar[bool] = False
    parallel: ClassVar[bool] = False
    fraction_bits: int = option(16, low=0, high=20)
    skip: tuple[str, ...] = ()

    def run(self, graph: Graph, ctx: PassContext = DEFAULT_CONTEXT) -> PassResult:
        hint = "run quantize{weights=int8, activations=int8} before integerize"
        if any(n.op in INT_LAYERS.values() for n in graph.nodes):
            raise IntegerizeError(f"graph '{graph.name}' is already in integer form")
        if not any(n.op == "fake_quant" for n in graph.nodes):
            raise IntegerizeError(f"graph '{graph.name}' has no quantized values (no fake_quant node)", hint=hint)
        lowering = _Lowering(graph, self)
        lowering.run()
        if not any(key.startswith("layers.") for key in lowering.counts):
            raise IntegerizeError(f"graph '{graph.name}' has no layer with quantized activations and weights",
                                  hint=hint)
        graph.eliminate_dead_code()
        return PassResult(True, lowering.stats())


def commutes(node: Node) -> bool:
    """Whether the node only moves or selects elements (monotone quantization commutes with it)."""
    moves = node.op in COMMUTING or (node.op == "pad" and node.attrs["mode"] in EDGE_PADDING)
    return moves and all(v is None or v.data is not None for v in node.inputs[1:])


class _Lowering:
    def __init__(self, graph: Graph, options: Integerize):
        self.graph, self.options = graph, options
        self.em = Emitter(graph)
        self.reps: dict[Value, Rep] = {}
        self.counts: dict[str, int] = {}

    def count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def stats(self) -> dict:
        return dict(sorted(self.counts.items()))

    def run(self) -> None:
        for node in list(self.graph.nodes):
            self.em.before = node
            if not self.lower(node):
                self.float_island(node)
        self.em.before = None
        outputs = list(self.graph.outputs)
        for i, v in enumerate(outputs):
            if v in self.reps:
                outputs[i] = self.em.dequantize(v, self.reps[v])
        self.graph.outputs = outputs

    # ---- dispatch -------------------------------------------------------------------------
    def lower(self, node: Node) -> bool:
        """Give node.output a Rep; False leaves the node float."""
        op, reps = node.op, self.reps
        if op == "fake_quant":
            return self.fake_quant(node)
        if get_op(op).layout is not None:
            if matching_pattern(self.options.skip, layer_names(node)) is not None or op not in INT_LAYERS:
                return False  # a float island (counted there)
            rep = lower_layer(node, reps, self.em)
            if rep is None:
                return False
            self.count(f"layers.{op}")
            reps[node.output] = rep
            return True
        x = node.inputs[0] if node.inputs else None
        if x not in reps:
            return op in ("add", "concat") and self.combine(node)
        rep = reps[x]
        if op == "relu":
            reps[node.output] = rep.clamped(0.0, None)
        elif op == "clip":
            reps[node.output] = rep.clamped(node.attrs["min"], node.attrs["max"])
        elif commutes(node):
            reps[node.output] = replace(rep, pending=rep.pending + (node,))
        elif op in MEAN_OPS and self.spatial_mean(node) is not None:
            reps[node.output] = self.integer_sum(node, rep)
        elif op in ("add", "concat"):
            return self.combine(node)
        else:
            return False
        return True

    # ---- quantizers ---------------------------------------------------------------------------
    def fake_quant(self, node: Node) -> bool:
        x = node.inputs[0]
        if x.data is not None:
            return False  # a weight: read by its layer (lower_layer), or kept for a float island
        fmt = int_format(node, next(iter(node.output.users), node))
        scale = node.inputs[1].data
        zp = node.inputs[2].data if len(node.inputs) > 2 and node.inputs[2] is not None else None
        if scale is None or (len(node.inputs) > 2 and node.inputs[2] is not None and zp is None):
            raise IntegerizeError(f"quantizer '{node.name}' has scales computed at run time")
        if node.attrs["axis"] is not None and scale.numel() > 1:
            raise IntegerizeError(
                f"quantizer '{node.name}' has per-channel activation scales: one int32 accumulator "
                "cannot sum products at different scales",
                hint="quantize activations per tensor (act-granularity=tensor), fold pre-shifted scales "
                     "first (fold-preshifted-bias), or keep the layers reading it in fake-quant (skip=[...])")
        scale64 = scale.detach().double().reshape(())
        zero = int(zp.reshape(())) if zp is not None else 0
        dtype = storage_dtype(fmt)
        stem = x.name
        if x in self.reps:
            rep = self.em.requantize(self.reps[x], scale64, zero, fmt.qmin, fmt.qmax, dtype, stem, fmt.name)
            self.count("requantize")
        else:
            source, moves = self.moved_input(x)
            stem = source.name
            scale_v = self.em.const(f"{stem}.in_scale", scale.detach().float().reshape(()))
            zp_v = self.em.zp_const(stem, zero)
            codes = self.em.node("quantize", [source, scale_v] + ([zp_v] if zp_v is not None else []),
                                 {"qmin": fmt.qmin, "qmax": fmt.qmax, "axis": None, "dtype": dtype}, f"{stem}.q")
            self.em.annotate(codes, scale_v, zp_v, None, fmt.name)
            rep = self.em.replay(Rep(codes, scale64, None, zero, fmt.qmin, fmt.qmax), moves)
            self.count("quantize")
        self.reps[node.output] = rep
        return True

    def moved_input(self, x: Value) -> tuple[Value, tuple[Node, ...]]:
        """A quantized value that only moves a graph input's elements (block-conv's cut into blocks,
        a flatten) is quantized at the graph input and the moves replayed on the codes: quantizing
        per tensor commutes with them, and the design's input then is the model's own input."""
        moves: list[Node] = []
        v = x
        while v.producer is not None and commutes(v.producer):
            moves.insert(0, v.producer)
            v = v.producer.inputs[0]
        return (v, tuple(moves)) if v in self.graph.inputs else (x, ())

    # ---- adds, concats and means --------------------------------------------------------
    def combine(self, node: Node) -> bool:
        """add / concat in int32 at a common fine scale; float operands are quantized to it."""
        if node.op == "add" and len(node.inputs) != 2:
            return False
        operands = [v for v in node.inputs if v is not None]
        if not any(v in self.reps for v in operands) or any(
                v not in self.reps and not v.dtype.is_floating_point for v in operands):
            return False
        scale = common_scale(node, [self.reps.get(v) for v in operands], self.options.fraction_bits)
        wide = []
        for v in operands:
            if v in self.reps:
                wide.append(self.em.to_wide(self.reps[v], scale, f"{node.name}.{v.name}").value)
            else:
                wide.append(self.wide_float(v, scale, node))
        out = self.em.node(node.op, wide, dict(node.attrs), f"{node.name}.int")
        self.em.annotate(out, self.em.const(f"{node.name}.int_scale", scale.float()), None, None, "int32")
        self.reps[node.output] = Rep(out, scale)
        self.count(f"int.{node.op}")
        return True

    def wide_float(self, v: Value, scale: torch.Tensor, node: Node) -> Value:
        scale_v = self.em.const(f"{node.name}.{v.name}.in_scale", scale.float())
        out = self.em.node("quantize", [v, scale_v], {"qmin": INT32[0], "qmax": INT32[1], "axis": None,
                                                       "dtype": torch.int32}, f"{v.name}.wide")
        self.em.annotate(out, scale_v, None, None, "int32")
        return out

    def spatial_mean(self, node: Node) -> tuple[int, ...] | None:
        """The dims a global average pool or a mean reduces (any sum / N is exact in integers),
        or None for an adaptive pool to more than one output."""
        x = node.inputs[0]
        if node.op == "adaptive_avg_pool":
            k = len(node.attrs["output_size"])
            return tuple(range(x.rank - k, x.rank)) if all(s == 1 for s in node.attrs["output_size"]) else None
        return tuple(d % x.rank for d in node.attrs["dims"]) if x.rank >= 3 else None

    def integer_sum(self, node: Node, rep: Rep) -> Rep:
        """mean = sum / N: an exact integer sum (int64) at scale s / N; the zero point sums N times."""
        dims = self.spatial_mean(node)
        channel_axis = rep.axis % node.inputs[0].rank if rep.axis is not None and not rep.per_tensor else None
        if channel_axis in dims:
            rep = self.em.to_wide(rep, torch.tensor(rep.min_scale(), dtype=torch.float64), node.name)
        rep = self.em.materialize(rep, node.name)
        keepdim = node.op == "adaptive_avg_pool" or node.attrs["keepdim"]
        count = 1
        for d in dims:
            count *= node.inputs[0].shape[d]
        out = self.em.node("reduce_sum", [rep.value], {"dims": dims, "keepdim": keepdim}, f"{node.name}.int")
        scale = rep.scale / count
        new_axis = None if rep.per_tensor else rep.axis % node.inputs[0].rank - (
            0 if keepdim else sum(1 for d in dims if d < rep.axis % node.inputs[0].rank))
        self.em.annotate(out, self.em.const(f"{node.name}.int_scale", scale.float()),
                         self.em.zp_const(f"{node.name}.sum", rep.zero_point * count), new_axis, "int64")
        self.count(f"int.{node.op}")
        return Rep(out, scale, new_axis, rep.zero_point * count, -2**63, 2**63 - 1)

    # ---- float islands -----------------------------------------------------------------
    def float_island(self, node: Node) -> None:
        """A node that stays float: its integer inputs are dequantized in front of it."""
        touched = False
        for i, v in enumerate(node.inputs):
            if v is not None and v in self.reps:
                self.graph.set_input(node, i, self.em.dequantize(v, self.reps[v]))
                touched = True
        if touched and node.op != "fake_quant":
            self.count(f"float.{node.op}")

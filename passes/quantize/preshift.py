"""Pre-shifted exponent bias (LLM-FP4, section 4.2) and its fold, `fold-preshifted-bias`.

Activations vary a lot between channels, but per-channel activation quantization cannot be
factored out of a dot product. `quantize{preshift=true}` restricts each channel's scale to a power
of two times one shared tensor scale, s_c = s * 2^rho_c (rho_c <= 0: a channel's exponent bias is
the tensor's real-valued bias plus an integer). Since scaling by 2^rho is exact in floating point,

    Q_{s 2^rho}(x) = 2^rho * Q_s(x * 2^-rho)      and      (x * 2^-rho) @ (W * 2^rho)^T = x @ W^T,

so this pass rewrites  x -> fake_quant per channel -> layer(W)  into
x * 2^-rho -> fake_quant per tensor -> layer(W * 2^rho), for any layer whose weight contracts the
input channels (its `WeightLayout`): inference quantizes the activation per tensor only. The
2^-rho factor is absorbed into the producer (LayerNorm gamma/beta, or the output channels of a
preceding layer and its bias) when the value feeds nothing else, otherwise it
becomes an explicit `mul` (a shift in hardware). The rewrite is exact: outputs are unchanged bit
for bit. Consumer weights must still be float (quantize them after this pass), or the layer is
left alone with a reason in the stats.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import ClassVar

import torch

from compiler.context import DEFAULT_CONTEXT, PassContext
from compiler.ir import Graph, Node, Value
from compiler.ops import get_op
from compiler.passes import Pass, PassResult, register_pass
from compiler.quant import QuantAnnotation
from compiler.quant.formats import FloatFormat, Format

MAX_SHIFT = 8


def preshift_scales(fmt: Format, tensor_scale: torch.Tensor, stats) -> torch.Tensor:
    """s * 2^rho_c with rho_c = ceil(log2(s_c / s)) in [-MAX_SHIFT, 0], s_c the channel's min-max scale."""
    amax_c = torch.maximum(stats.lo_c.abs(), stats.hi_c.abs()).double()
    s = float(tensor_scale)
    ratio = (amax_c / fmt.max_value / s).clamp(min=2.0 ** -(MAX_SHIFT + 1))
    rho = torch.ceil(torch.log2(ratio)).clamp(-MAX_SHIFT, 0).to(torch.int32)
    return torch.ldexp(torch.full(rho.shape, s, dtype=torch.float32), rho)


def _shifts(scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(shared scale, integer shifts rho) when every scale is a power-of-two multiple of the max."""
    top = scale.max()
    mantissa, exponent = torch.frexp(scale / top)
    if not bool((mantissa == 0.5).all()):
        return None
    return top, (exponent - 1).to(torch.int32)


def _pow2(rho: torch.Tensor, sign: int) -> torch.Tensor:
    return torch.ldexp(torch.ones(rho.shape), sign * rho)


def _along(t: torch.Tensor, dim: int, rank: int) -> torch.Tensor:
    shape = [1] * rank
    shape[dim] = -1
    return t.reshape(shape)


def foldable_consumer(node: Node, index: int) -> bool:
    """Whether input `index` of `node` is the activation of a layer whose weight contracts its
    channels, so per-channel powers of two can move into that weight."""
    layout = get_op(node.op).layout
    return layout is not None and layout.in_axis is not None and layout.activations[:1] == (index,)


def _foldable_consumer(user: Node, out: Value, axis: int) -> str | None:
    reads = [i for i, v in enumerate(user.inputs) if v is out]
    if len(reads) != 1 or not foldable_consumer(user, reads[0]):
        return "consumer-not-a-layer"
    layout = get_op(user.op).layout
    if axis != layout.input_channel_axis(user):
        return "channel-axis-mismatch"
    w = layout.weight_value(user)
    if w.data is None:
        quantized = w.producer is not None and w.producer.op == "fake_quant"
        return "weights-quantized" if quantized else "weights-not-constant"
    return None


@register_pass("fold-preshifted-bias")
@dataclass(frozen=True)
class FoldPreshiftedBias(Pass):
    """Fold pre-shifted per-channel activation scales (2^k times a shared scale) into the producer and
    the next layers' weights, leaving per-tensor activation quantization (exact)."""

    exact: ClassVar[bool] = True

    def run(self, graph: Graph, ctx: PassContext = DEFAULT_CONTEXT) -> PassResult:
        tally: Counter[str] = Counter()
        for node in [n for n in graph.nodes if n.op == "fake_quant"]:
            ann = node.output.annotation(QuantAnnotation)
            if ann is None or not ann.preshift or ann.granularity != "channel":
                continue
            tally[self._fold(graph, node, ann, tally)] += 1
        folded = tally.pop("folded", 0)
        stats: dict[str, int | float | str] = {"folded": folded}
        stats.update({k: v for k, v in sorted(tally.items())})
        if folded:
            stats["removed_weights"] = graph.remove_unused_weights()
        return PassResult(folded > 0, stats)

    def _fold(self, graph: Graph, node: Node, ann: QuantAnnotation, tally: Counter) -> str:
        x, scale_v, out = node.inputs[0], node.inputs[1], node.output
        axis = node.attrs["axis"] % x.rank
        if scale_v.data is None or len([v for v in node.inputs if v is not None]) != 2:
            return "skipped.not-a-constant-symmetric-scale"
        found = _shifts(scale_v.data.detach().float())
        if found is None:
            return "skipped.not-power-of-two"
        if out in graph.outputs or not out.users:
            return "skipped.output-not-consumed-by-layers"
        for user in out.users:
            reason = _foldable_consumer(user, out, axis)
            if reason is not None:
                return f"skipped.{reason}"
        shared, rho = found
        how, shifted = self._absorb(graph, x, axis, rho, node)
        tally[how] += 1
        s = graph.add_constant(f"{scale_v.name}.shared", shared.reshape(()).clone())
        new = graph.create_node("fake_quant", [shifted, s], {"format": node.attrs["format"], "axis": None,
                                                             "block_size": 0},
                                name=node.name, before=node, source=node.source)
        fmt_bias = ann.spec().bias_of(float(shared)) if isinstance(ann.spec(), FloatFormat) else None
        new.output.annotate(QuantAnnotation(format=ann.format, granularity="tensor", scale=s.name, role=ann.role,
                                            exponent_bias=round(fmt_bias, 6) if fmt_bias is not None else None))
        for user in list(out.users):
            layout = get_op(user.op).layout
            w = layout.weight_value(user)
            scaled = layout.scale_input_channels(w.data.detach(), _pow2(rho, +1).to(w.dtype), user)
            graph.set_input(user, layout.weight, graph.rebind_weight(w, scaled, user))
        graph.replace_all_uses(out, new.output)
        graph.erase_node(node)
        return "folded"

    @staticmethod
    def _absorb(graph: Graph, x: Value, axis: int, rho: torch.Tensor, quant: Node) -> tuple[str, Value]:
        """Multiply x by 2^-rho along `axis`: inside its producer when only this quantizer reads it."""
        down = _pow2(rho, -1).to(x.dtype)
        prod = x.producer
        alone = x.users == [quant] and x not in graph.outputs
        if alone and prod is not None and prod.op == "layer_norm" and axis == x.rank - 1 \
                and len(prod.attrs["normalized_shape"]) == 1:
            params = [(i, prod.inputs[i]) for i in (1, 2) if i < len(prod.inputs) and prod.inputs[i] is not None]
            if params and all(v.data is not None for _, v in params) and any(i == 1 for i, _ in params):
                for i, v in params:
                    graph.set_input(prod, i, graph.rebind_weight(v, v.data.detach() * down, prod))
                return "absorbed.layer_norm", x
        layout = get_op(prod.op).layout if prod is not None else None
        if alone and layout is not None and layout.bias is not None and layout.weight_value(prod).data is not None \
                and axis == layout.output_channel_axis(prod):
            bias = layout.bias_value(prod)
            if bias is None or bias.data is not None:
                w = layout.weight_value(prod)
                graph.set_input(prod, layout.weight,
                                graph.rebind_weight(w, layout.scale_output_channels(w.data.detach(), down, prod), prod))
                if bias is not None:
                    graph.set_input(prod, layout.bias, graph.rebind_weight(bias, bias.data.detach() * down, prod))
                return f"absorbed.{prod.op}", x
        const = graph.add_constant(f"{x.name}.preshift", _along(down, axis, x.rank).reshape(
            [d if k == axis else 1 for k, d in enumerate(x.shape)][-(x.rank - axis):]).clone())
        mul = graph.create_node("mul", [x, const], name=f"{x.name}.preshift", before=quant)
        return "inserted.mul", mul.output

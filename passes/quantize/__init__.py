"""quantize: weights and activations to INT2-8, FP ExMy (FP4 E2M1/E3M0/E1M2, FP8 ...), MXFP4, NVFP4.

    quantize{weights=int4, activations=int8, granularity=channel, calibration=8,
             search=fp-bias, overrides={fc=int8, "layer1.*"="fp4-e2m1/none"}, skip=[stem]}

Conv, conv_transpose, linear, matmul and embedding layers get explicit `fake_quant` nodes (their
outputs carry a `QuantAnnotation`): one on each constant weight (per tensor, per output channel or
per group along the dot product; MXFP4/NVFP4 always in their own blocks) and one on each float
activation input (per tensor or per channel), shared by the layers reading the same value.
Layers matching `skip`, and ops with parameters that have no quantized form, stay float (the
latter with a warning in the stats). Values quantized by an earlier quantize pass are left alone,
so passes compose: `quantize{weights=none, preshift=true}, fold-preshifted-bias, quantize{activations=none}`.

1. Calibration batches come from `compiler.calibration` (compile(calibration_data=...), the CLI's
   --calibration-data, else the example inputs) and are validated before anything else happens.
2. `calibration.observe` runs the float graph; activation ranges by `act-clip` (minmax,
   percentile, mse); weight scales by `weight-clip` (minmax, or per-scale MSE-optimal clipping).
3. `search=fp-bias|fp-format`: the LLM-FP4 search (search.py) per layer on the captured inputs;
   fp-format only tries the E/M splits every compile target can carry (`search.excluded` names
   the others and why).
4. `preshift=true`: per-channel activation scales restricted to 2^k times a shared tensor scale
   (preshift.py), for `fold-preshifted-bias` to fold into the next layer.
5. `budget=B`: mixed precision: per-layer sensitivity (sensitivity.py) keeps the most sensitive
   layers at `wide` while the average weight bits stay within B.
6. `residuals=true`: the residual stream is quantized too: the float inputs of adds and concats and
   the data input of average pools and layer/group norms (per tensor, at the activation format), as
   onnxruntime's quantize_static does. Every layer output then meets a quantizer, so `integerize`
   requantizes each accumulator to 8 bits and onnxruntime fuses every layer into an integer kernel.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch

from compiler import calibration as calib_ctx
from compiler.context import DEFAULT_CONTEXT, PassContext
from compiler.ir import Graph, Value
from compiler.options import option
from compiler.passes import Pass, PassResult, register_pass
from compiler.quant.formats import BlockFormat, Format, parse_format
from passes.quantize import preshift as preshift_mod  # also registers fold-preshifted-bias
from passes.quantize.calibration import Stats, choose_range, observe, weight_params
from passes.quantize.layers import Layer, find_layers, matches
from passes.quantize.preshift import FoldPreshiftedBias
from passes.quantize.rewrite import insert_fake_quant
from passes.quantize.search import Quantizer, format_candidates, search_layer, searchable

SEARCH_ITEMS = 64     # batch items of a layer's input kept for the search
SEARCH_ROWS = 512     # rows (tokens / feature vectors) of a linear layer's input the search replays
FIRST_INPUT_OPS = frozenset({"avg_pool", "adaptive_avg_pool", "reduce_mean", "layer_norm", "group_norm"})
RESIDUAL_OPS = FIRST_INPUT_OPS | {"add", "concat"}
ACT_FORMATS = "none, int2..int8, uint2..uint8 (-sym/-asym/-narrow), fpN-eXmY (fp8-e4m3, fp4-e2m1, ...)"


def _format(text: str | None, what: str) -> Format | None:
    if text is None or text == "none":
        return None
    fmt = parse_format(text)
    if what == "activations" and isinstance(fmt, BlockFormat):
        raise ValueError(f"{fmt.name} is a weight format (its block scales come from the weights); "
                         f"activations take: {ACT_FORMATS}")
    return fmt


@register_pass("quantize")
@dataclass(frozen=True)
class Quantize(Pass):
    """Quantize conv/linear/matmul/embedding weights and activations: INT2-8, FP ExMy, MXFP4, NVFP4,
    as fake_quant nodes with typed annotations, calibrated on data; LLM-FP4 format/bias search (lossy)."""

    exact: ClassVar[bool] = False
    weights: str | None = "int8"
    activations: str | None = "int8"
    granularity: Literal["tensor", "channel", "group"] = "channel"
    act_granularity: Literal["tensor", "channel"] = "tensor"
    block_size: int = option(32, low=1, high=4096)
    calibration: int = option(8, low=1, high=1024)
    weight_clip: Literal["minmax", "mse"] = "mse"
    act_clip: Literal["minmax", "percentile", "mse"] = "mse"
    percentile: float = option(99.99, low=50.0, high=100.0, low_open=True)
    search: Literal["none", "fp-format", "fp-bias"] = "none"
    rounds: int = option(2, low=1, high=16)
    candidates: int = option(100, low=2, high=1000)
    preshift: bool = False
    overrides: dict[str, str] = field(default_factory=dict)
    skip: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    budget: float = option(0.0, low=0.0, high=32.0)
    wide: str = "int8"
    residuals: bool = False
    seed: int = option(0, low=0, high=2**31 - 1)

    def __post_init__(self) -> None:
        super().__post_init__()
        _format(self.weights, "weights")
        _format(self.activations, "activations")
        _format(self.wide, "weights")
        for pattern, spec in self.overrides.items():
            w, _, a = str(spec).partition("/")
            _format(w, "weights")
            if a:
                _format(a, "activations")
        narrow = _format(self.weights, "weights")
        if self.budget and (narrow is None or self.budget < narrow.storage_bits):
            raise ValueError("budget (average weight bits) needs a weight format no wider than it")

    def calibrates(self) -> bool:
        acts = [self.activations] + [spec.partition("/")[2] for spec in self.overrides.values()]
        return self.search != "none" or bool(self.budget) or any(a and a != "none" for a in acts)

    # ---- planning -------------------------------------------------------------------------
    def formats(self, layer: Layer) -> tuple[Format | None, Format | None]:
        w, a = self.weights, self.activations
        pattern = matches(layer.node, self.overrides)
        if pattern is not None:
            spec = self.overrides[pattern]
            w, _, a2 = spec.partition("/")
            a = a2 or a
        return _format(w, "weights"), _format(a, "activations")

    def _batches(self, graph: Graph, ctx: PassContext) -> tuple[list, str]:
        if ctx.calibration is None:
            from compiler.api import random_inputs
            return [random_inputs(graph, self.seed)], "generated inputs"
        return calib_ctx.batches(graph, ctx.calibration.data, self.calibration), ctx.calibration.source

    def _weight_spec(self, layer: Layer, fmt: Format, w: torch.Tensor) -> tuple[int | None, int]:
        if isinstance(fmt, BlockFormat):
            return layer.w_reduce % w.dim(), fmt.block_size
        if self.granularity == "tensor":
            return None, 0
        if self.granularity == "group":
            return layer.w_reduce % w.dim(), self.block_size
        return layer.w_channel % w.dim(), 0

    # ---- the pass ---------------------------------------------------------------------------
    def run(self, graph: Graph, ctx: PassContext = DEFAULT_CONTEXT) -> PassResult:
        layers, left_float, skipped = find_layers(graph, self.skip)
        if self.only:
            layers = [layer for layer in layers if matches(layer.node, self.only)]
        plan = {layer.node: self.formats(layer) for layer in layers}
        needs_data = self.search != "none" or self.budget or any(
            a is not None and layer.acts for layer in layers for a in [plan[layer.node][1]])
        batches, source = self._batches(graph, ctx) if needs_data else ([], "none")
        stats: dict[str, int | float | str] = {"calibration.batches": len(batches), "calibration.source": source}
        if self.budget:
            from passes.quantize.sensitivity import mixed_precision
            wide, mixed_stats = mixed_precision(self, graph, layers, batches, ctx)
            stats.update(mixed_stats)
            plan.update({layer.node: (parse_format(self.wide), plan[layer.node][1])
                         for layer in layers if layer.name in wide})

        # activation targets: (value, format name, axis) -> [(layer, input index)]
        targets: dict[tuple[Value, str], list[tuple[Layer, int]]] = {}
        for layer in layers:
            afmt = plan[layer.node][1]
            for i in layer.acts if afmt is not None else ():
                v = layer.node.inputs[i]
                if v.producer is None or v.producer.op != "fake_quant":
                    targets.setdefault((v, afmt.name), []).append((layer, i))
        if self.residuals and _format(self.activations, "activations") is not None:
            self._residual_targets(graph, targets)
        watch: dict[Value, Stats] = {}
        for (v, _), users in targets.items():
            # pre-shifting only pays where fold-preshifted-bias can fold it: inputs of linear/conv
            foldable = self.preshift and all(preshift_mod.foldable_consumer(layer.node, i) for layer, i in users)
            per_channel = (self.act_granularity == "channel" and all(layer.layout for layer, _ in users)) or foldable
            watch[v] = Stats(axis=users[0][0].a_channel % v.rank if per_channel and v.rank else None)
        searching = [layer for layer in layers if self.search != "none" and layer.weight is not None
                     and layer.acts == (0,) and plan[layer.node][0] is not None]
        for layer in searching:
            x = layer.node.inputs[0]
            watch.setdefault(x, Stats()).keep_rows = SEARCH_ITEMS
        if watch:
            observe(graph, batches, watch, self.seed)

        act_q = {key: self._act_quantizer(key, users, watch[key[0]]) for key, users in targets.items()}
        weight_q: dict[Layer, tuple] = {}
        for layer in layers:
            wfmt = plan[layer.node][0]
            if layer.weight is not None and wfmt is not None:
                w = layer.node.inputs[layer.weight].data
                axis, block = self._weight_spec(layer, wfmt, w)
                clip = "minmax" if layer in searching else self.weight_clip
                weight_q[layer] = (wfmt, *weight_params(w, wfmt, axis, block, clip), axis, block)
        if searching:
            stats.update(self._search(searching, plan, watch, act_q, weight_q, ctx))

        for (v, name), users in targets.items():
            q = act_q[(v, name)]
            first = min((layer.node for layer, _ in users), key=lambda n: n._seq)
            out = insert_fake_quant(graph, v, q.fmt, q.scale, zero_point=q.zero_point, axis=q.axis,
                                    stem=f"{v.name}.act", role="activation", before=first,
                                    preshift=q.preshift)
            for layer, i in users:
                graph.set_input(layer.node, i, out)
        done: dict[tuple, Value] = {}
        for layer, (fmt, scale, zp, ts, axis, block) in weight_q.items():
            w = layer.node.inputs[layer.weight]
            key = (w, fmt.name, axis, block)
            if key not in done:
                done[key] = insert_fake_quant(graph, w, fmt, scale, zero_point=zp, tensor_scale=ts, axis=axis,
                                              block_size=block, stem=w.name, role="weight", before=layer.node)
            graph.set_input(layer.node, layer.weight, done[key])

        stats.update(self._summary(layers, plan, weight_q, act_q, left_float, skipped))
        return PassResult(bool(weight_q or act_q), stats)

    def _residual_targets(self, graph: Graph, targets: dict) -> None:
        """The residual stream's float values (see the module docstring, 6.) join the activation
        targets, as users without a layout."""
        name = _format(self.activations, "activations").name
        for node in graph.nodes:
            if node.op not in RESIDUAL_OPS or matches(node, self.skip):
                continue
            for i, v in enumerate(node.inputs[:1] if node.op in FIRST_INPUT_OPS else node.inputs):
                if v is None or v.data is not None or not v.dtype.is_floating_point or \
                        (v.producer is not None and v.producer.op == "fake_quant"):
                    continue
                targets.setdefault((v, name), []).append((Layer(node, None, None, (i,)), i))

    def _act_quantizer(self, key, users, stats: Stats) -> "ActQuantizer":
        v, name = key
        fmt = parse_format(name)
        per_channel = stats.axis is not None
        lo, hi = choose_range(stats, fmt, self.act_clip, self.percentile, per_channel=False)
        scale, zp = fmt.params(lo, hi)
        if self.preshift and per_channel and not fmt.has_zero_point and \
                all(preshift_mod.foldable_consumer(layer.node, i) for layer, i in users):
            scale = preshift_mod.preshift_scales(fmt, scale, stats)
            return ActQuantizer(fmt, scale, None, stats.axis, True)
        if per_channel:
            lo_c, hi_c = choose_range(stats, fmt, self.act_clip, self.percentile, per_channel=True)
            scale, zp = fmt.params(lo_c, hi_c)
            return ActQuantizer(fmt, scale, zp, stats.axis, False)
        return ActQuantizer(fmt, scale, zp, None, False)

    def _search(self, searching: list[Layer], plan, watch, act_q, weight_q, ctx: PassContext) -> dict:
        before, after, fixed = [], [], set()
        chosen: dict[str, int] = {}
        for layer in searching:
            node = layer.node
            fmt, scale, zp, ts, axis, block = weight_q[layer]
            if not searchable(fmt) or zp is not None:
                continue
            x_val = node.inputs[0]
            x = watch[x_val].kept()
            afmt = plan[node][1]
            key = (x_val, afmt.name) if afmt is not None else None
            aq = act_q.get(key)
            if layer.layout.channels_last:  # replayed on rows of features
                if node.inputs[layer.weight].rank != 2:
                    continue
                x = x.reshape(-1, x.shape[-1])
                if x.shape[0] > SEARCH_ROWS:
                    x = x[torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(self.seed))[:SEARCH_ROWS]]
            a_init = None
            if aq is not None and searchable(aq.fmt) and aq.zero_point is None:
                a_axis = aq.axis  # the search replays linear inputs flattened to rows: count from the end
                if aq.axis is not None and layer.layout.channels_last:
                    a_axis = aq.axis - x_val.rank
                a_init = Quantizer(aq.fmt, aq.scale, a_axis)
            # an input shared with an earlier searched layer keeps the quantizer chosen there
            result = search_layer(node, x, node.inputs[layer.weight].data, Quantizer(fmt, scale, axis, block),
                                  a_init, search_act=key not in fixed, search_format=self.search == "fp-format",
                                  rounds=self.rounds, candidates=self.candidates, refuses=ctx.format_refusal)
            weight_q[layer] = (result.weight.fmt, result.weight.scale, None, ts, axis, block)
            if result.act is not None and key is not None and key not in fixed:
                act_q[key] = ActQuantizer(result.act.fmt, result.act.scale, None, aq.axis, aq.preshift)
                fixed.add(key)
            before.append(result.error_before)
            after.append(result.error_after)
            chosen[result.weight.fmt.name] = chosen.get(result.weight.fmt.name, 0) + 1
        out: dict[str, int | float | str] = {"search.layers": len(before)}
        if before:
            out["search.rel_error_before"] = round(sum(before) / len(before), 6)
            out["search.rel_error_after"] = round(sum(after) / len(after), 6)
        out.update({f"search.weights.{k}": v for k, v in sorted(chosen.items())})
        if self.search == "fp-format":
            formats = {q.fmt for q in act_q.values()} | {w[0] for w in weight_q.values()}
            refused = {f.name: ctx.format_refusal(f.name) for fmt in formats
                       for f in format_candidates(fmt, True) if ctx.format_refusal(f.name)}
            if refused:
                out["search.excluded"] = "; ".join(f"{name} ({why})" for name, why in sorted(refused.items()))
        return out

    def _summary(self, layers, plan, weight_q, act_q, left_float, skipped) -> dict:
        stats: dict[str, int | float | str] = {"layers": len(layers), "skipped": skipped}
        counts: dict[str, int] = {}
        bits = params = 0.0
        for layer, (fmt, *_rest) in weight_q.items():
            counts[f"weights.{fmt.name}"] = counts.get(f"weights.{fmt.name}", 0) + 1
            n = layer.node.inputs[layer.weight].type.numel
            bits, params = bits + n * fmt.storage_bits, params + n
        for (_, name), q in act_q.items():
            key = f"activations.{name}" + (".preshift" if q.preshift else "")
            counts[key] = counts.get(key, 0) + 1
        stats.update(sorted(counts.items()))
        if params:
            stats["avg_weight_bits"] = round(bits / params, 3)
        for op, n in sorted(left_float.items()):
            stats[f"float.{op}"] = n
        if left_float:
            stats["warning"] = "stays float (no quantized form): " + ", ".join(
                f"{op} x{n}" for op, n in sorted(left_float.items()))
        return stats


@dataclass
class ActQuantizer:
    fmt: Format
    scale: torch.Tensor
    zero_point: torch.Tensor | None
    axis: int | None
    preshift: bool


__all__ = ["ActQuantizer", "FoldPreshiftedBias", "Quantize"]

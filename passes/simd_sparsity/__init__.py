"""simd-sparsify: prune weights in SIMD-shaped groups for the sparse kernel (ALCS, arXiv 2109.00170).

    simd-sparsify{sparsity=0.75, simd=16, importance=l2, skip=[conv1], ratios={fc=0.5}}
    simd-sparsify{latency-budget=0.5}          # half the dense model's predicted latency
    simd-sparsify{latency-budget="12ms", importance=taylor}
    simd-sparsify{pattern=nm, n=2, m=4}        # 2:4 along the input channels

A group is `simd` consecutive output channels at one (input channel, kernel row, kernel column)
of a conv, linear or matmul weight: the weights one vector multiply-add uses together (`simd`
defaults to the target's fp32 lanes: 16 with AVX-512, 8 with AVX2). The least important groups
of each layer go (`importance`: l1, l2, taylor on calibration data). With `latency-budget`
(a fraction of the dense model's latency, or milliseconds as "12ms") the per-layer densities
come from the latency model (latency.py) and the exact grid solver (allocate.py) instead of
`sparsity`; the stats compare the result with one uniform density at the same budget.

Pruned weights are zeroed in a new tensor (the user's stays untouched) and the weight carries a
`SparsityAnnotation`; `target pytorch{sparse-kernel=true}` then runs the layer through the
sparse kernel. The pass is exact when every pruned group was zero already (`exact` in the stats),
lossy otherwise: the stats give the relative weight error and the outputs' relative error on
the first calibration batch. Layers whose output channels per conv group are fewer than `simd`
(depthwise convs) are skipped with the reason in `skipped_layers`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch

from compiler import calibration as calib
from compiler.context import DEFAULT_CONTEXT, PassContext
from compiler.errors import PipelineError
from compiler.interpreter import interpret
from compiler.ir import Graph
from compiler.manager import max_difference
from compiler.names import layer_names, matching_pattern
from compiler.options import option
from compiler.passes import Pass, PassResult, register_pass
from compiler.sparse.annotation import SparsityAnnotation
from compiler.sparse.layers import unsupported
from passes.prune.importance import gradients
from passes.simd_sparsity.allocate import LayerChoices, allocate, uniform
from passes.simd_sparsity.groups import (Candidate, find_layers, keep_top, nm_matrix_mask, simd_matrix_mask,
                                         weight_mask)
from passes.simd_sparsity.importance import group_scores, removed_curve
from passes.simd_sparsity.latency import LatencyModel, model_latency
from passes.simd_sparsity.report import latency_report

LANES = (4, 8, 16)
GRID_STEP = 0.025  # densities the budget solver chooses from: max(1 - max-sparsity, 0.025) .. 0.975, and 1
_MS = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*ms\s*$")


def parse_budget(budget: float | str, dense_ms: float) -> float:
    """Milliseconds from a fraction of `dense_ms` (0 < f <= 1) or a "12ms" string."""
    kind, value = _budget(budget)
    return value if kind == "ms" else value * dense_ms


def _budget(budget: float | str) -> tuple[str, float]:
    """("ms", milliseconds) or ("fraction", f); a ValueError naming the accepted forms otherwise."""
    if isinstance(budget, str):
        found = _MS.match(budget)
        if found:
            return "ms", float(found.group(1))
        try:
            budget = float(budget)
        except ValueError:
            raise ValueError(f'latency-budget must be a fraction of the dense latency (0.5) or milliseconds '
                             f'("12ms"), got {budget!r}') from None
    if not 0.0 < budget <= 1.0:
        raise ValueError(f'latency-budget as a number is a fraction of the dense latency in (0, 1]; '
                         f'write "{budget}ms" for milliseconds')
    return "fraction", budget


@register_pass("simd-sparsify")
@dataclass(frozen=True)
class SimdSparsify(Pass):
    """Prune conv/linear/matmul weights in SIMD-lane groups (or N:M) for the sparse kernel, optionally
    under a latency budget from a measured latency model (lossy)."""

    exact: ClassVar[bool] = False
    parallel: ClassVar[bool] = False  # many small tensor ops; the latency model times on one thread
    sparsity: float = option(0.5, low=0.0, high=1.0, high_open=True)
    pattern: Literal["simd", "nm"] = "simd"
    simd: int | None = option(None, low=4, high=16)  # 4, 8 or 16 lanes; none: the target's
    n: int = option(2, low=1, high=64)
    m: int = option(4, low=2, high=64)
    importance: Literal["l1", "l2", "taylor"] = "l1"
    ratios: dict[str, float] = option(default_factory=dict, low=0.0, high=1.0, high_open=True)
    skip: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    latency_budget: float | str | None = option(None, low=0.0, low_open=True, high=1e9)
    max_sparsity: float = option(0.95, low=0.0, high=1.0, low_open=True, high_open=True)
    calibration: int = option(2, low=1, high=1024)

    # the latency table and plot behind `nnforge sparsity-latency`, reachable through the registry
    latency_report = staticmethod(latency_report)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.simd is not None and self.simd not in LANES:
            raise ValueError(f"simd must be one of {LANES} (fp32 lanes of SSE, AVX2, AVX-512), got {self.simd}")
        if not 0 < self.n < self.m:
            raise ValueError(f"N:M needs 0 < n < m, got n={self.n}, m={self.m}")
        if self.latency_budget is not None:
            if self.pattern != "simd":
                raise ValueError("latency-budget needs pattern=simd: the sparse kernel runs SIMD groups only")
            _budget(self.latency_budget)

    def run(self, graph: Graph, ctx: PassContext = DEFAULT_CONTEXT) -> PassResult:
        lanes = self.simd or ctx.target.simd_width
        if lanes not in LANES:
            raise PipelineError(f"the target's simd width {lanes} is not one of {LANES}",
                                hint="give the pass simd=4, 8 or 16")
        layers, skipped = find_layers(graph, pattern=self.pattern, lanes=lanes, m=self.m, skip=self.skip,
                                      only=self.only)
        stats: dict = {"simd": lanes, "pattern": self.pattern, "skipped": len(skipped),
                       "skipped_layers": "; ".join(f"{k}: {v}" for k, v in skipped.items())}
        batches, stats["calibration.source"] = self._batches(graph, ctx)
        grads = gradients(graph, batches) if self.importance == "taylor" else {}
        scores = {layer: group_scores(layer, self.importance, self.pattern, lanes, grads.get(layer.weight))
                  for layer in layers}
        if self.latency_budget is not None and layers:
            densities = self._allocate(graph, layers, scores, lanes, batches[0], stats)
        else:
            densities = {layer: 1.0 - self._ratio(layer) for layer in layers}
        reference = interpret(graph, *batches[0])
        kept = total = 0
        removed_sq = weight_sq = 0.0
        exact, per_layer = True, {}
        for layer in layers:
            result = self._apply(graph, layer, scores[layer], densities[layer], lanes)
            if result is None:
                continue
            annotation, lost_sq, all_sq = result
            kept, total = kept + annotation.kept, total + annotation.total
            removed_sq, weight_sq, exact = removed_sq + lost_sq, weight_sq + all_sq, exact and lost_sq == 0
            per_layer[f"density.{layer.name}"] = round(annotation.density, 4)
        if len(set(per_layer.values())) > 1:  # one density for all says it once, in `density`
            stats.update(per_layer)
        stats.update(layers=len(per_layer), groups=total, groups_kept=kept,
                     density=kept / total if total else 1.0, exact="yes" if exact else "no",
                     weight_error=(removed_sq / weight_sq) ** 0.5 if weight_sq else 0.0,
                     output_error=max_difference(reference, interpret(graph, *batches[0]))[1])
        return PassResult(total > 0, stats)

    # ---- per layer ------------------------------------------------------------------------
    def _ratio(self, layer: Candidate) -> float:
        pattern = matching_pattern(self.ratios, layer_names(layer.node))
        return self.ratios[pattern] if pattern is not None else self.sparsity

    def _apply(self, graph: Graph, layer: Candidate, scores: torch.Tensor, density: float, lanes: int):
        """Zero the layer's least important groups; returns (annotation, removed w^2, all w^2)."""
        rows = layer.matrix_shape[1]
        if self.pattern == "nm":
            matrix_mask = nm_matrix_mask(scores, layer, self.n, self.m)
            annotation = SparsityAnnotation("nm", (1, 1), int(matrix_mask.sum()), matrix_mask.numel(),
                                            self.n, self.m)
        else:
            kept = scores.numel() if density >= 1.0 else max(1, round(density * scores.numel()))
            if kept == scores.numel():
                return None  # left dense
            matrix_mask = simd_matrix_mask(keep_top(scores, kept), rows, lanes)
            annotation = SparsityAnnotation("simd", (lanes, 1), kept, scores.numel())
        mask = weight_mask(layer, matrix_mask)
        old = layer.weight.data
        new = torch.where(mask, old, torch.zeros((), dtype=old.dtype))  # a new tensor: the user's stays
        value = graph.rebind_weight(layer.weight, new, layer.node)
        if value is not layer.weight:  # the weight is shared with another reader
            graph.set_input(layer.node, layer.layout.weight, value)
        value.annotate(annotation)
        lost = old.detach().double()[~mask]
        return annotation, float((lost * lost).sum()), float((old.detach().double() ** 2).sum())

    # ---- latency budget -------------------------------------------------------------------
    def _allocate(self, graph: Graph, layers: list[Candidate], scores: dict, lanes: int,
                  inputs, stats: dict) -> dict[Candidate, float]:
        """Per-layer densities meeting the budget with the least importance removed (allocate.py);
        layers the kernel does not run stay dense, layers named in `ratios` keep their ratio."""
        dense_only = {layer: 1.0 for layer in layers if unsupported(layer.node) is not None}
        layers = [layer for layer in layers if layer not in dense_only]  # pruning them would save no time
        if dense_only:
            stats["dense_layers"] = "; ".join(f"{c.name}: {unsupported(c.node)}" for c in dense_only)
        if not layers:
            return dense_only
        model = LatencyModel()
        tables = {layer: model.table(layer, lanes) for layer in layers}
        model.save()
        timing = model_latency(graph, {layer.node: table for layer, table in tables.items()}, inputs)
        budget = parse_budget(self.latency_budget, timing.dense_ms)
        fixed = {layer: 1.0 - self._ratio(layer) for layer in layers
                 if matching_pattern(self.ratios, layer_names(layer.node)) is not None}
        free = [layer for layer in layers if layer not in fixed]
        fixed_ms = timing.predict(sum(tables[layer].layer(d) for layer, d in fixed.items()))
        lowest = max(1.0 - self.max_sparsity, GRID_STEP)
        grid = np.concatenate([np.arange(round(lowest / GRID_STEP), round(1 / GRID_STEP)) * GRID_STEP, [1.0]])
        choices = []
        for layer in free:
            curve, total = removed_curve(scores[layer]).numpy(), scores[layer].numel()
            kept = np.maximum(1, np.round(grid * total)).astype(int)
            latency = np.array([timing.scale * tables[layer].layer(d) for d in grid])
            choices.append(LayerChoices(grid, latency, curve[total - kept]))
        chosen = allocate(choices, fixed_ms, budget, timing.dense_ms)
        whole = sum(float(scores[layer].sum()) for layer in free) or 1.0  # importance as a share of all
        stats.update({"latency.dense_ms": timing.dense_ms, "latency.rest_ms": timing.rest_ms,
                      "latency.scale": timing.scale, "latency.budget_ms": budget,
                      "latency.predicted_ms": chosen.predicted_ms, "importance_removed": chosen.removed / whole})
        base = uniform(choices, fixed_ms, budget)
        if base is not None:
            stats.update({"uniform.density": base.densities[0], "uniform.predicted_ms": base.predicted_ms,
                          "uniform.importance_removed": base.removed / whole})
        return {**dense_only, **fixed, **dict(zip(free, chosen.densities))}

    def _batches(self, graph: Graph, ctx: PassContext) -> tuple[list, str]:
        if ctx.calibration is None:
            from compiler.api import random_inputs
            return [random_inputs(graph, ctx.seed)], "generated inputs"
        return calib.batches(graph, ctx.calibration.data, self.calibration), ctx.calibration.source


__all__ = ["SimdSparsify", "parse_budget"]

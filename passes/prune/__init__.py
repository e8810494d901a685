"""prune: dependency-graph structured pruning on the IR (whole channels, whole attention heads).

    prune{ratio=0.5, importance=l1, scope=local, round-to=8, ignore=[stem], ratios={layer4=0.3}}

1. `groups.analyze` labels every channel index of every tensor dim with a class, op by op
   (`rules.py`), so that indices that must go together share one: residual adds, concat offsets,
   split/slice ranges, flatten into linear (each channel repeated over its spatial block), head
   reshapes and permutes, grouped/depthwise convs, norms, broadcasting, embeddings. Channels that
   reach a graph input or output, or an op without a rule, are kept.
2. `importance.unit_scores` scores each unit over every weight its removal touches.
3. `plan.choose` picks the units to remove per group (local) or over all groups (global), keeping
   at least one step per group and every touched weight dim a multiple of `round-to`.
4. `shrink.shrink` slices the weights and rewrites shapes and attributes (head counts included).

Everything is linear in the graph size. The pass is lossy (`exact = False`): the manager reports
how far outputs moved. `describe_groups(graph)` is the readable listing behind
`nnforge inspect --groups`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, Sequence

import numpy as np
import torch

from compiler import calibration
from compiler.context import DEFAULT_CONTEXT, PassContext
from compiler.gcpause import gc_paused
from compiler.ir import Graph
from compiler.options import option
from compiler.passes import Pass, PassResult, register_pass
from passes.prune.groups import Analysis, analyze
from passes.prune.importance import calibration_inputs, unit_scores
from passes.prune.plan import choose, group_key
from passes.prune.render import describe_groups
from passes.prune.shrink import shrink

Importance = Literal["l1", "l2", "bn-scale", "lamp", "random", "taylor"]


@register_pass("prune")
@dataclass(frozen=True)
class Prune(Pass):
    """Structured pruning: remove whole channels and heads, coupled layers together (lossy)."""

    exact: ClassVar[bool] = False
    ratio: float = option(0.5, low=0.0, high=1.0, high_open=True)
    importance: Importance = "l1"
    scope: Literal["local", "global"] = "local"
    round_to: int = option(1, low=1, high=4096)
    ignore: list[str] = ()
    ratios: dict[str, float] = option(default_factory=dict, low=0.0, high=1.0, high_open=True)
    steps: int = option(1, low=1, high=100)
    calibration: int = option(2, low=1, high=1024)
    seed: int = option(0, low=0, high=2**31 - 1)

    # the readable group listing, reachable through the pass registry (the CLI's `inspect --groups`)
    describe_groups = staticmethod(describe_groups)

    def calibrates(self) -> bool:
        return self.importance == "taylor"

    def run(self, graph: Graph, ctx: PassContext = DEFAULT_CONTEXT) -> PassResult:
        data, source = None, "none"
        if self.importance == "taylor":  # compile(calibration_data=...) / --calibration-data, if given
            current = ctx.calibration
            if current is not None:
                data, source = calibration.batches(graph, current.data, self.calibration), current.source
            else:
                source = "generated inputs"
        stats = prune_graph(graph, ratio=self.ratio, importance=self.importance, scope=self.scope,
                            round_to=self.round_to, ignore=tuple(self.ignore), ratios=dict(self.ratios),
                            steps=self.steps, calibration=self.calibration, seed=self.seed,
                            calibration_data=data)
        stats["calibration.source"] = source
        return PassResult(stats["removed_channels"] > 0, stats)


@gc_paused()
def prune_graph(graph: Graph, *, ratio: float = 0.5, importance: str = "l1", scope: str = "local",
                round_to: int = 1, ignore: Sequence[str] = (), ratios: dict[str, float] | None = None,
                steps: int = 1, calibration: int = 2, seed: int = 0,
                calibration_data: Sequence[Sequence[torch.Tensor]] | None = None) -> dict:
    """Prune `graph` in place; returns statistics. `calibration_data` feeds `taylor`."""
    ratios = dict(ratios or {})
    stats = {"groups": 0, "prunable_groups": 0, "removed_channels": 0, "channels": 0,
             "removed_weights": 0}
    original: dict[tuple[str, int], int] = {}
    for step in range(steps):
        analysis = analyze(graph, tuple(ignore))
        prunable = [g for g in analysis.groups if g.prunable]
        if step == 0:
            stats.update(groups=len(analysis.groups), prunable_groups=len(prunable),
                         channels=sum(g.size for g in prunable))
            original = {group_key(analysis, g): g.size for g in prunable}
        # step i of n removes up to (i / n) of the original units: a linear schedule
        frac = (step + 1) / steps
        step_ratios = {k: r * frac for k, r in ratios.items()}
        data = None
        if importance == "taylor":
            data = calibration_data or calibration_inputs(graph, calibration, seed)
        scores = unit_scores(analysis, importance, seed=seed + step, calibration=data or ())
        removed = choose(analysis, scores, ratio=ratio * frac, scope=scope, round_to=round_to,
                         ratios=step_ratios, original=original)
        stats["removed_channels"] += int(removed.sum())
        stats["removed_weights"] += shrink(graph, analysis, removed)
    graph.remove_unused_weights()
    return stats


def prune_units(graph: Graph, analysis: Analysis, removed: np.ndarray) -> int:
    """Remove exactly the units marked in `removed` (one entry per unit of `analysis`)."""
    return shrink(graph, analysis, np.asarray(removed, dtype=bool))


__all__ = ["Analysis", "Prune", "analyze", "describe_groups", "prune_graph", "prune_units"]

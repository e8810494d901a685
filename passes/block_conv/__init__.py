"""block-conv: feature maps cut into independent blocks, so fused layers never leave the chip.

    block-conv{pattern=fixed, block=28, padding=zeros, buffer-kb=1024}     F28
    block-conv{pattern=hierarchical, grid=4, padding=replicate}            H4x4

Block Convolution (Li, Liu, Li, Cheng; arXiv 2105.08937) as a pass on the IR:

1. `plan.plan` decides, per 2-d convolution and pooling layer, the blocks its input map is cut
   into (`geometry.py` holds the semantics and the remainder rule), or why it stays plain;
2. `stages.build_stages` and `memory.analyze` group the layers into fused groups under the
   on-chip budget and count off-chip traffic for three schedules (layer by layer, line-buffer
   streaming, fused blocks);
3. `layout.rewrite` makes the graph compute the blocked semantics with existing ops (reshape,
   permute, pad, conv, pooling), so the interpreter, the PyTorch backend and onnxruntime run it
   as they are, and annotates each blocked layer with a `TilingAnnotation` (block, grid, padding,
   fused group).

The pass is lossy (`exact = False`): padding every block on its own changes the outputs near
block borders, which a short fine-tune of the PyTorch backend's module recovers
(docs/block-conv.md). `describe_memory(graph)` is the analysis behind
`nnforge inspect MODEL --block-conv OPTIONS [--plot FILE.png]`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from compiler.context import DEFAULT_CONTEXT, PassContext
from compiler.errors import PipelineError
from compiler.ir import Graph
from compiler.options import option
from compiler.passes import Pass, PassResult, register_pass
from passes.block_conv.geometry import Decision, Tiling
from passes.block_conv.layout import rewrite
from passes.block_conv.memory import Analysis, analyze
from passes.block_conv.plan import Options, Plan, plan
from passes.block_conv.render import describe, plot_memory
from passes.block_conv.stages import build_stages

KB = 1024


@register_pass("block-conv")
@dataclass(frozen=True)
class BlockConv(Pass):
    """Block convolution: maps cut into separately padded blocks, plus an on-chip memory analysis (lossy)."""

    exact: ClassVar[bool] = False
    parallel: ClassVar[bool] = False
    pattern: Literal["fixed", "hierarchical"] = "fixed"
    block: int = option(28, low=1, high=2**16)
    grid: int = option(4, low=1, high=2**10)
    padding: Literal["zeros", "replicate", "reflect"] = "zeros"
    only: list[str] = ()
    skip: list[str] = ()
    buffer_kb: float = option(1024.0, low=0.0, low_open=True, high=2.0**30)

    @property
    def options(self) -> Options:
        return Options(self.pattern, self.block, self.grid, self.padding, tuple(self.only), tuple(self.skip))

    def analyze(self, graph: Graph) -> tuple[Plan, Analysis]:
        """The plan and the memory analysis of `graph`, without rewriting it."""
        decisions = plan(graph, self.options)
        analysis = analyze(build_stages(graph, decisions.decisions), self.buffer_kb * KB)
        return decisions, analysis

    def describe_memory(self, graph: Graph, plot: Path | str | None = None) -> str:
        """The per-layer table and schedule totals as text; with `plot`, also a PNG."""
        decisions, analysis = self.analyze(graph)
        if plot is not None:
            plot_memory(analysis, plot, title=f"{graph.name}, {self.options.label}, buffer {self.buffer_kb:g} KB")
        return describe(graph, decisions, analysis, self.options)

    def run(self, graph: Graph, ctx: PassContext = DEFAULT_CONTEXT) -> PassResult:
        decisions, analysis = self.analyze(graph)
        _check_fusion(analysis, self.buffer_kb)
        fused = analysis.schedules["fused"]
        groups = {analysis.index[s].layer: gi for gi, g in enumerate(fused.groups) for s in g.stages
                  if analysis.index[s].layer is not None}
        conversions = rewrite(graph, decisions.decisions, self.padding, groups)
        return PassResult(bool(decisions.blocked), _stats(decisions, analysis, self.options, conversions))


def _check_fusion(analysis: Analysis, buffer_kb: float) -> None:
    """A budget that fuses no two layers is an error naming the cheapest pair."""
    layers = [s.index for s in analysis.sg.stages if s.layer is not None]
    if len(layers) < 2 or analysis.schedules["fused"].fused_groups:
        return
    pairs = [list(range(a, b + 1)) for a, b in zip(layers, layers[1:])]
    need, members = min((analysis.tile_buffer(m)[0], m) for m in pairs)
    first, last = analysis.index[members[0]].name, analysis.index[members[-1]].name
    raise PipelineError(f"block-conv: buffer-kb={buffer_kb:g} is too small to fuse any two layers; the "
                        f"cheapest pair, {first} and {last}, needs {need / KB:.1f} KB on chip",
                        where=f"layer {first}", hint=f"raise buffer-kb to at least {need / KB:.0f}, "
                        "or use smaller blocks (block=...) or a finer grid (grid=...)")


def _stats(decisions: Plan, analysis: Analysis, options: Options, conversions: int) -> dict:
    schedules = analysis.schedules
    fused = schedules["fused"]
    stats: dict = {"pattern": options.label, "blocked_layers": len(decisions.blocked),
                   "plain_layers": len(decisions.decisions) - len(decisions.blocked),
                   "layout_conversions": conversions, "fused_groups": len(fused.fused_groups),
                   "fused_buffer_kb": round(fused.peak_buffer / KB, 1)}
    for name, schedule in schedules.items():
        stats[f"traffic_kb.{name}"] = round(schedule.traffic / KB, 1)
    if fused.traffic:
        stats["traffic_reduction"] = round(schedules["layer"].traffic / fused.traffic, 2)
    over = [analysis.index[g.stages[0]].name for g in fused.groups if not g.fits]
    if over:
        stats["over_budget"] = ", ".join(over)
    unblocked = decisions.describe_unblocked()
    if unblocked:
        stats["unblocked"] = unblocked
    return stats


__all__ = ["Analysis", "BlockConv", "Decision", "Options", "Plan", "Tiling", "analyze", "build_stages",
           "plan", "plot_memory", "rewrite"]

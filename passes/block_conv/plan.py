"""Which layers of a graph run block by block: one `Decision` per spatial layer.

Bad options are reported here, before anything is rewritten: a block larger than every map, or
a grid that divides none, is one error naming the option and the largest map's layer; layers
that stay plain for a reason of their own are listed (grouped by reason) in the statistics.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from compiler.errors import PipelineError
from compiler.ir import Graph, Node
from compiler.names import layer_names, matching_pattern
from passes.block_conv.geometry import Decision, decide, is_spatial, map_size


@dataclass(frozen=True)
class Options:
    pattern: str = "fixed"
    block: int = 28
    grid: int = 4
    padding: str = "zeros"
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The paper's short name: F28, H4x4."""
        return f"F{self.block}" if self.pattern == "fixed" else f"H{self.grid}x{self.grid}"


@dataclass
class Plan:
    decisions: dict[Node, Decision] = field(default_factory=dict)

    @property
    def blocked(self) -> list[Decision]:
        return [d for d in self.decisions.values() if d.blocked]

    def unblocked_reasons(self) -> dict[str, list[str]]:
        """reason -> layer names, for the layers that stay plain for a stated reason."""
        out: dict[str, list[str]] = {}
        for d in self.decisions.values():
            if not d.blocked and d.reason:
                out.setdefault(d.reason, []).append(d.node.name)
        return out

    def describe_unblocked(self) -> str:
        """One line: `conv5_1, conv5_2: map 14x14 does not divide into a 4x4 grid; ...`."""
        return "; ".join(f"{', '.join(names)}: {reason}" for reason, names in self.unblocked_reasons().items())


def plan(graph: Graph, options: Options) -> Plan:
    """Decide every spatial layer; raise PipelineError when the options block nothing at all."""
    spatial = [n for n in graph.nodes if is_spatial(n)]
    if not spatial:
        raise PipelineError("block-conv: the graph has no 2-d convolution or pooling over an NCHW map",
                            hint="block convolution applies to CNNs; leave block-conv out of this pipeline")
    _check_options_fit(spatial, options)
    result = Plan()
    for node in spatial:
        names = layer_names(node)
        if options.only and matching_pattern(options.only, names) is None:
            result.decisions[node] = Decision(node, reason="not selected by only=[...]")
            continue
        skipped = matching_pattern(options.skip, names)
        if skipped is not None:
            result.decisions[node] = Decision(node, reason=f"skipped by skip=[{skipped}]")
            continue
        result.decisions[node] = decide(node, options.pattern, options.block, options.grid, options.padding)
    if options.only and all(d.reason.startswith("not selected") for d in result.decisions.values()):
        raise PipelineError(f"block-conv: only=[{', '.join(options.only)}] selects no convolution or pooling layer",
                            hint="patterns match module paths, node names and weight names (`nnforge inspect` lists them)")
    return result


def _check_options_fit(spatial: list[Node], options: Options) -> None:
    largest = max(spatial, key=lambda n: map_size(n)[0] * map_size(n)[1])
    h, w = map_size(largest)
    where = f"layer {largest.name} ({largest.source or largest.op}), input map {h}x{w}"
    if options.pattern == "fixed" and all(max(map_size(n)) <= options.block for n in spatial):
        raise PipelineError(f"block-conv: block={options.block} is not smaller than any feature map, "
                            "so nothing would be blocked", where=where,
                            hint=f"choose a block below {max(h, w)} that divides the maps (e.g. {_divisor(h, w)})")
    if options.pattern == "hierarchical" and not any(
            map_size(n)[0] % options.grid == 0 and map_size(n)[1] % options.grid == 0 for n in spatial):
        raise PipelineError(f"block-conv: grid={options.grid} divides no feature map, so nothing would be "
                            "blocked", where=where, hint="choose a grid that divides the maps (e.g. 2)")


def _divisor(h: int, w: int) -> int:
    """The largest proper divisor of both map dims, as an example block size."""
    return next((d for d in range(max(h, w) // 2, 0, -1) if h % d == 0 and w % d == 0), 1)

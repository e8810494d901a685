"""fold-constants: evaluate nodes whose inputs are all constants, ahead of time.

A value is constant when it holds data (weights and constants; graph inputs never do). One sweep
in topological order hands each node to the constant folder the ONNX frontend uses too
(compiler/constant_folding.py: which ops fold, the size limits, which results stay parameters)
and replaces its outputs with the new constants, so a folded result feeds the next fold in the
same sweep. Dead nodes are left to `dce`; results larger than `max-elements` (or costing more
than the folder's MAC limit) are not materialized and count as `skipped`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from compiler.constant_folding import FoldLimits, fold, refusal
from compiler.context import DEFAULT_CONTEXT, PassContext
from compiler.ir import Graph, Node, Value
from compiler.options import option
from compiler.passes import Pass, PassResult, register_pass


def _live(node: Node, outputs: set[Value]) -> bool:
    return any(out.users or out in outputs for out in node.outputs)


@register_pass("fold-constants")
@dataclass(frozen=True)
class FoldConstants(Pass):
    """Evaluate nodes whose inputs are all constants and replace them with constants."""

    exact: ClassVar[bool] = True
    max_elements: int = option(FoldLimits.max_elements, low=0, high=2**31 - 1)

    def run(self, graph: Graph, ctx: PassContext = DEFAULT_CONTEXT) -> PassResult:
        limits = FoldLimits(max_elements=self.max_elements)
        outputs = set(graph.outputs)
        folded = skipped = 0
        for node in graph.nodes:
            types = [out.type for out in node.outputs]
            reason = refusal(node.op, node.inputs, node.attrs, types, limits)
            if reason is not None:
                skipped += reason == "too-large" and _live(node, outputs)
                continue
            if not _live(node, outputs):
                continue  # dead: dce removes it without computing it
            results = fold(graph, node.op, node.inputs, node.attrs, types,
                           [f"{out.name}.folded" for out in node.outputs], limits)
            for out, const in zip(node.outputs, results):
                const.annotations.update(out.annotations)
                graph.replace_all_uses(out, const)
            graph.erase_node(node)
            folded += 1
        stats: dict[str, int | float | str] = {"folded": folded, "skipped": skipped}
        if folded:
            stats["removed_weights"] = graph.remove_unused_weights()
        return PassResult(folded > 0, stats)

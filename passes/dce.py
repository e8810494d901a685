"""dce: dead-code elimination.

Every op in the registry is pure, so a node whose outputs feed nothing (and are not graph
outputs) can go. One sweep in reverse topological order suffices: erasing a node drops its uses,
so its producers are already dead when the sweep reaches them. Weights no node reads are dropped
afterwards (graph inputs are part of the signature and stay).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from compiler.ir import Graph
from compiler.passes import Pass, PassResult, register_pass


@register_pass("dce")
@dataclass(frozen=True)
class DeadCodeElimination(Pass):
    """Remove nodes and weights that do not contribute to any graph output."""

    exact: ClassVar[bool] = True

    def run(self, graph: Graph) -> PassResult:
        outputs = set(graph.outputs)
        removed = 0
        for node in reversed(graph.nodes):
            if all(not out.users and out not in outputs for out in node.outputs):
                graph.erase_node(node)
                removed += 1
        removed_weights = graph.remove_unused_weights()
        return PassResult(bool(removed or removed_weights),
                          {"removed_nodes": removed, "removed_weights": removed_weights})

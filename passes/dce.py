"""dce: dead-code elimination (`Graph.eliminate_dead_code`, which the frontends use too).

Every op in the registry is pure, so a node whose outputs feed nothing (and are not graph
outputs) can go, and so can weights no node reads. Graph inputs are part of the signature and stay.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from compiler.context import DEFAULT_CONTEXT, PassContext
from compiler.ir import Graph
from compiler.passes import Pass, PassResult, register_pass


@register_pass("dce")
@dataclass(frozen=True)
class DeadCodeElimination(Pass):
    """Remove nodes and weights that do not contribute to any graph output."""

    exact: ClassVar[bool] = True

    def run(self, graph: Graph, ctx: PassContext = DEFAULT_CONTEXT) -> PassResult:
        removed, removed_weights = graph.eliminate_dead_code()
        return PassResult(bool(removed or removed_weights),
                          {"removed_nodes": removed, "removed_weights": removed_weights})

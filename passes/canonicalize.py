"""canonicalize: remove identity ops and collapse chains of permutes and of reshapes.

The rules are data: the identity rules the frontends also apply while they import
(compiler/identities.py: identity reshape / permute / cast / slice / pad / expand, mul by 1,
add and sub of 0, div by 1, one-element pooling windows, ...), plus two that compose:

    permute(permute(x, p), q)  ->  permute(x, [p[i] for i in q])    (or x, when that is no move)
    reshape(reshape(x, s), t)  ->  reshape(x, t)                     (or x, when t is x's shape)

The greedy driver (compiler/rewrite.py) applies them to a fixpoint and erases what they left
dead. Stats: `<rule>: count` for every rule that fired, and `removed_weights`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from compiler.context import DEFAULT_CONTEXT, PassContext
from compiler.identities import IDENTITY_RULES, X
from compiler.ir import Graph, Value
from compiler.passes import Pass, PassResult, register_pass
from compiler.pattern import Pattern
from compiler.rewrite import Match, Rule, apply_rules


def _compose_permutes(m: Match) -> Value:
    inner, outer = m["inner"].attrs["dims"], m.node.attrs["dims"]
    rank = len(outer)
    dims = tuple(inner[d % rank] % rank for d in outer)
    if dims == tuple(range(rank)):
        return m["x"]
    return m.graph.create_node("permute", [m["x"]], {"dims": dims}, name=m.node.name,
                               source=m.node.source, before=m.node).output


def _compose_reshapes(m: Match) -> Value:
    x, shape = m["x"], m.node.attrs["shape"]
    if tuple(shape) == x.shape:
        return x
    return m.graph.create_node("reshape", [x], {"shape": shape}, name=m.node.name,
                               source=m.node.source, before=m.node).output


CANONICAL_RULES: tuple[Rule, ...] = IDENTITY_RULES + (
    Rule("permute-chain", Pattern("permute", (Pattern("permute", (X,), name="inner"),)), _compose_permutes),
    Rule("reshape-chain", Pattern("reshape", (Pattern("reshape", (X,)),)), _compose_reshapes),
)


@register_pass("canonicalize")
@dataclass(frozen=True)
class Canonicalize(Pass):
    """Remove ops that return their input unchanged (identity reshape/permute/cast/slice/pad,
    mul by 1, add or sub of 0, div by 1, ...) and compose chains of permutes and of reshapes
    (exact)."""

    exact: ClassVar[bool] = True

    def run(self, graph: Graph, ctx: PassContext = DEFAULT_CONTEXT) -> PassResult:
        fired = apply_rules(graph, CANONICAL_RULES)
        stats: dict[str, int | float | str] = dict(sorted(fired.items()))
        if fired:
            stats["removed_weights"] = graph.remove_unused_weights()
        return PassResult(bool(fired), stats)

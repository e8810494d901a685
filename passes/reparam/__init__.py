"""reparam: structural re-parameterization as rewrites on the IR, for any model.

Training-time multi-branch blocks (RepVGG, Diverse Branch Block, ACNet, MobileOne) become the
single convolutions they are equivalent to at inference, found by their dataflow alone: no
module classes, no `switch_to_deploy()`. Each rewrite family lives in its own module:

    sequential  conv -> conv / avg-pool merged (DBB transform III)          sequential.py
    parallel    summed branches on one input -> one conv (kxk, 1x1, identity,
                avg-pool, 1xk / kx1, smaller odd kernels, each with or without BN)  parallel.py
    concat      convs on one input, concatenated -> one conv                 concat.py
    linear      linear -> linear chains, summed linear branches              linear.py

`kernels.py` holds the kernel algebra they share (all float64, cast back to the weights'
dtype; new weight values, never the user's tensors modified), `patterns.py` the sum trees and
bookkeeping. Each family is a list of rewrite rules. The greedy driver (compiler/rewrite.py)
sweeps them over the graph in topological order until nothing changes (at most MAX_ROUNDS
sweeps), each sweep after the fold-bn rules have folded every BN and per-channel constant map
they can into its neighbours (option `fold-bn`). A node's inputs are rewritten before the node,
so a DBB block goes 1x1 -> kxk and 1x1 -> avg merges, then the four branches into one conv.

Stats: `<family>` counts rewrites that fired (`parallel.branches` the summands merged),
`fold-bn` the maps folded, and `refused.<family>.<reason>` every candidate left alone and why.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from compiler.ir import Graph
from compiler.passes import Pass, PassResult, register_pass
from compiler.context import DEFAULT_CONTEXT, PassContext
from compiler.rewrite import apply_rules
from passes.fold_bn import FoldStats, fold_rules
from passes.reparam import concat, linear, parallel, sequential
from passes.reparam.patterns import Tally

MAX_ROUNDS = 8

# (option field, rewrite family) in the order their rules are tried on a node
FAMILIES = (("sequential", sequential), ("branches", parallel), ("concat", concat), ("linear", linear))


@register_pass("reparam")
@dataclass(frozen=True)
class Reparameterize(Pass):
    """Structural re-parameterization (exact): merge parallel conv branches summed on one input
    (kxk, 1x1, identity, avg-pool, 1xk/kx1, each with or without BN), conv -> conv / avg-pool
    sequences, concatenated convs on one input, and linear chains / summed linear branches.
    Options switch families off; `grow` allows merges that cost more multiply-accumulates
    or weights than what they replace."""

    exact: ClassVar[bool] = True
    parallel: ClassVar[bool] = False
    branches: bool = True
    sequential: bool = True
    concat: bool = True
    linear: bool = True
    fold_bn: bool = True
    grow: bool = False

    def run(self, graph: Graph, ctx: PassContext = DEFAULT_CONTEXT) -> PassResult:
        tally, folds = Tally(), FoldStats()
        rules = [rule for option, family in FAMILIES if getattr(self, option)
                 for rule in family.rules(tally, self.grow)]
        first = fold_rules(folds) if self.fold_bn else []
        changed = bool(apply_rules(graph, rules, first=first, max_iterations=MAX_ROUNDS))
        if folds.folded:
            tally.fired["fold-bn"] += folds.folded
        stats: dict[str, int | float | str] = dict(tally.stats())
        if changed:
            stats["removed_weights"] = graph.remove_unused_weights()
        return PassResult(changed, stats)

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
dtype; new weight values, never the user's tensors modified), `patterns.py` the node patterns,
sum trees and bookkeeping. Rounds repeat until nothing changes: each round first folds BN and
per-channel constant maps into their neighbours (the fold-bn machinery, option `fold-bn`), then
runs the enabled families in the order above, so a DBB block goes 1x1 -> kxk and 1x1 -> avg
merges, then the four branches into one conv.

Stats: `<family>` counts rewrites that fired (`parallel.branches` the summands merged),
`fold-bn` the maps folded, and `refused.<family>.<reason>` every candidate left alone and why.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from compiler.ir import Graph
from compiler.passes import Pass, PassResult, register_pass
from compiler.context import DEFAULT_CONTEXT, PassContext
from passes.fold_bn import fold_affine_maps
from passes.reparam import concat, linear, parallel, sequential
from passes.reparam.patterns import Tally

MAX_ROUNDS = 8

# (option field, rewrite family) in the order they run within a round
FAMILIES = (("sequential", sequential.run), ("branches", parallel.run), ("concat", concat.run),
            ("linear", linear.run))


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
        tally = Tally()
        families = [fn for option, fn in FAMILIES if getattr(self, option)]
        changed = False
        for _ in range(MAX_ROUNDS):
            progress = False
            if self.fold_bn:
                folded = fold_affine_maps(graph).folded
                if folded:
                    tally.fired["fold-bn"] += folded
                    progress = True
            for rewrite in families:
                progress |= rewrite(graph, tally, grow=self.grow)
            changed |= progress
            if not progress:
                break
        stats: dict[str, int | float | str] = dict(tally.stats())
        if changed:
            stats["removed_weights"] = graph.remove_unused_weights()
        return PassResult(changed, stats)

"""fold-bn: fold inference BatchNorm and per-channel affine maps into adjacent conv / linear layers.

BN in inference is a per-channel affine map y = x * s + t with s = gamma / sqrt(var + eps) and
t = beta - mean * s; so is a mul / add / sub / div by a constant that varies along one axis
(`affine.py`). Such a map is folded

* into the node that produces its input (`producer.py`): conv, conv_transpose, linear, or a
  matmul by a constant matrix (which becomes a linear), looking through one permute:
  w' = w * s per output channel, b' = b * s + t;
* failing that, into every conv / linear that consumes its output (`consumer.py`):
  w' = w * s per input channel, b' = b + sum(w * t); exact for linear, and for a conv that does
  not zero-pad (or when t = 0), since a padded border would see 0 instead of t.

The arithmetic is done in float64 and cast back to the weight's dtype. New weight values are
created; the user's tensors are never touched. The folds are rewrite rules (`fold_rules`) the
greedy driver applies until nothing more folds, so chains (conv -> bn -> mul -> add) collapse
into the conv.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

from compiler.ir import Graph, Node
from compiler.passes import Pass, PassResult, register_pass
from compiler.context import DEFAULT_CONTEXT, PassContext
from compiler.pattern import Pattern
from compiler.rewrite import Match, Rule, apply_rules
from passes.fold_bn.affine import AFFINE_OPS, Affine, affine_of
from passes.fold_bn.consumer import consumer_layout, fold_into_consumers
from passes.fold_bn.producer import fold_into_producer, producer_layout

__all__ = ["FoldBatchNorm", "FoldStats", "fold_affine_maps", "fold_rules", "Affine", "affine_of",
           "fold_into_producer", "fold_into_consumers"]

_NO_NEIGHBOUR = ("unsupported-producer", "unsupported-consumer")


@dataclass
class FoldStats:
    bn_folded: int = 0
    bn_into_consumer: int = 0
    affine_folded: int = 0
    bn_skipped: dict[str, str] = field(default_factory=dict)       # node name -> reason
    affine_skipped: dict[str, str] = field(default_factory=dict)

    @property
    def folded(self) -> int:
        return self.bn_folded + self.affine_folded


def _fold_one(graph: Graph, node: Node, consumers: bool) -> tuple[str | None, bool]:
    """(reason it was not folded or None, whether it went into its consumers)."""
    aff = affine_of(node)
    if aff is None:
        return "not-affine", False
    if isinstance(aff, str):
        return aff, False
    reason = fold_into_producer(graph, aff)
    if reason is None or not consumers:
        return reason, False
    second = fold_into_consumers(graph, aff)
    if second is None:
        return None, True
    # report the more telling reason: the consumer's when the producer is no candidate at all
    return (second if reason == "unsupported-producer" and second != "unsupported-consumer" else reason), False


def _neighbours_foldable(node: Node) -> bool:
    """An elementwise op counts as a candidate only next to a layer it could fold into."""
    producers = [v.producer for v in node.inputs if v is not None and v.producer is not None]
    if any(producer_layout(p) is not None or p.op == "permute" for p in producers):
        return True
    return any(consumer_layout(u) is not None for out in node.outputs for u in out.users)


def fold_rules(stats: FoldStats, *, batch_norm: bool = True, elementwise: bool = True,
               consumers: bool = True) -> list[Rule]:
    """The folds as rewrite rules ("batch-norm", "affine"); what they fold and refuse goes to `stats`."""
    def fold(m: Match) -> bool | None:
        node, name = m.node, m.node.name
        is_bn = node.op == "batch_norm"
        reason, into_consumer = _fold_one(m.graph, node, consumers)
        skipped = stats.bn_skipped if is_bn else stats.affine_skipped
        if reason is None:
            skipped.pop(name, None)
            if is_bn:
                stats.bn_folded += 1
                stats.bn_into_consumer += into_consumer
            else:
                stats.affine_folded += 1
            return True
        if is_bn or (reason not in _NO_NEIGHBOUR + ("not-affine",) and _neighbours_foldable(node)):
            skipped[name] = reason
        return None

    return ([Rule("batch-norm", Pattern("batch_norm"), fold)] if batch_norm else []) + \
        ([Rule("affine", Pattern(tuple(sorted(AFFINE_OPS - {"batch_norm"}))), fold)] if elementwise else [])


def fold_affine_maps(graph: Graph, *, batch_norm: bool = True, elementwise: bool = True,
                     consumers: bool = True) -> FoldStats:
    """Fold BN (and constant mul/add/sub/div) nodes until nothing more folds."""
    stats = FoldStats()
    apply_rules(graph, fold_rules(stats, batch_norm=batch_norm, elementwise=elementwise, consumers=consumers))
    return stats


@register_pass("fold-bn")
@dataclass(frozen=True)
class FoldBatchNorm(Pass):
    """Fold inference BatchNorm and constant per-channel mul/add/sub/div into the adjacent
    conv, conv_transpose, linear or matmul (exact). `into-consumers` also folds a map into the conv /
    linear layers reading it (only where that is exact); `affine` covers mul/add/sub/div."""

    exact: ClassVar[bool] = True
    parallel: ClassVar[bool] = False
    into_consumers: bool = True
    affine: bool = True

    def run(self, graph: Graph, ctx: PassContext = DEFAULT_CONTEXT) -> PassResult:
        fs = fold_affine_maps(graph, elementwise=self.affine, consumers=self.into_consumers)
        skipped = Counter(fs.bn_skipped.values())
        stats: dict[str, int | float | str] = {"folded": fs.bn_folded, "skipped": sum(skipped.values())}
        stats.update({f"skipped.{r}": c for r, c in sorted(skipped.items())})
        if fs.bn_into_consumer:
            stats["folded.into-consumer"] = fs.bn_into_consumer
        if fs.affine_folded:
            stats["affine-folded"] = fs.affine_folded
        stats.update({f"affine-skipped.{r}": c for r, c in sorted(Counter(fs.affine_skipped.values()).items())})
        if fs.folded:
            stats["removed_weights"] = graph.remove_unused_weights()
        return PassResult(fs.folded > 0, stats)

"""A conv followed by a conv or avg-pool -> one conv (DBB transform III, and its mirror).

    second(first(x))  with first 1x1 (stride 1):        W[o,i] = sum_m W2[o,m] W1[m,i],
                                                         b = b2 + sum_{m,taps} W2[o,m] b1[m]
                      with second 1x1 (no padding):     the same sums, first's geometry kept

Exactness at the border: a second conv that zero-pads first's output sees 0 there, while the
merged conv (padding p1 + p2 on x) sees b1. So a padded second layer is merged only when b1 is
all zero; DBB's "pad with the first branch's bias" is written in the IR as padding on the 1x1
itself (conv1x1{padding=p} -> BN -> kxk{padding=0}), which merges exactly. A zero `pad` node
between the two convs counts as the second's padding. Grouped convs compose per group (groups
become the gcd). A merge that costs more multiply-accumulates, or more weights, than the pair
is refused (1x1 -> 2x2 avg-pool stride 2 would quadruple a DenseNet transition's weights) unless
it is a summand next to a conv on the same input that is at least as large (then the parallel
rewrite absorbs it for free), or `grow` is set.
"""
from __future__ import annotations

import math

from compiler.ir import Graph, Node
from compiler.pattern import Pattern
from compiler.rewrite import Rule
from passes.reparam.kernels import CORES
from passes.reparam.merge import compose
from passes.reparam.parallel import joins_sum
from passes.reparam.patterns import Tally, emit, erase_dead, stem

FAMILY = "sequential"

FIRST = Pattern("conv", name="first", single_use=True)
PATTERNS = (
    Pattern(("conv", "avg_pool"), name="second", inputs=(FIRST,)),
    Pattern("conv", name="second", inputs=(Pattern("pad", single_use=True, inputs=(FIRST,)),)),  # pad -> padding
)


def _pixels(node: Node) -> int:
    return math.prod(node.outputs[0].shape[2:])


def rewrite(graph: Graph, second: Node, first: Node, tally: Tally, grow: bool) -> bool:
    outer, inner = CORES[second.op](graph, second), CORES["conv"](graph, first)
    for branch in (outer, inner):
        if isinstance(branch, str):
            tally.refuse(FAMILY, second.name, branch)
            return False
    if outer.base is not first.outputs[0]:  # a pad the second conv could not absorb
        tally.refuse(FAMILY, second.name, "non-zero-pad")
        return False
    merged = compose(inner.kernel, outer.kernel)
    if isinstance(merged, str):
        tally.refuse(FAMILY, second.name, merged)
        return False
    out = second.outputs[0]
    if merged.output_shape(inner.base.shape) != out.shape:
        tally.refuse(FAMILY, second.name, "shape-mismatch")
        return False
    macs = inner.kernel.cost() * _pixels(first) + outer.kernel.cost() * _pixels(second)
    params = inner.kernel.cost() + (outer.kernel.cost() if second.op == "conv" else 0)
    growth = "more-macs" if merged.cost() * _pixels(second) > macs else \
        "more-params" if merged.cost() > params else None
    if growth and not grow and not joins_sum(graph, out, inner.base, merged):
        tally.refuse(FAMILY, second.name, growth)
        return False
    weights = inner.weights + outer.weights
    name = stem(weights, [second]) + ".reparam"
    attrs = {"stride": merged.stride, "padding": merged.padding, "dilation": merged.dilation,
             "groups": merged.groups}
    result = emit(graph, "conv", inner.base, merged.weight, merged.bias, attrs, name=name, before=second,
                  source=second.source, dtype=out.dtype, is_param=any(w.is_param for w in weights))
    graph.replace_all_uses(out, result)
    erase_dead(graph, outer.nodes + inner.nodes)
    tally.fire(FAMILY, second.name)
    return True


def rules(tally: Tally, grow: bool) -> list[Rule]:
    def merge(m) -> bool | None:
        return rewrite(m.graph, m.node, m["first"], tally, grow) or None
    return [Rule(FAMILY, pattern, merge) for pattern in PATTERNS]

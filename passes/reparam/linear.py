"""Linear layers: consecutive ones with nothing nonlinear between them, and summed branches.

    linear(linear(x, W1, b1), W2, b2)       =  linear(x, W2 W1, W2 b1 + b2)
    sum_i linear(x, W_i, b_i) [+ x] [+ c]   =  linear(x, sum_i W_i [+ I], sum_i b_i [+ c])

Per-feature maps between two linears (BatchNorm1d, mul / add by constants) are folded into the
first by the fold step that runs before every round. A chain whose product has more weights than
the pair (a low-rank bottleneck, in < mid > out not given) is refused unless `grow`. 1x1 convs
are the k = 1 case of the sequential rewrite (conv then conv).
"""
from __future__ import annotations

import torch

from compiler.ir import Graph, Node, Value
from compiler.pattern import Pattern
from compiler.rewrite import Rule
from passes.reparam.patterns import (SUM_ROOT, Tally, as_vector, emit, erase_dead, owner, per_channel, stem,
                                     sum_tree, sum_values)

FAMILY_CHAIN, FAMILY_SUM = "linear-chain", "linear-sum"

CHAIN = Pattern("linear", name="second", inputs=(Pattern("linear", name="first", single_use=True),))


def _params(node: Node) -> tuple[torch.Tensor, torch.Tensor] | str:
    w, b = node.inputs[1], node.inputs[2] if len(node.inputs) > 2 else None
    if w.data is None or (b is not None and b.data is None):
        return "non-constant-weight"
    if not w.dtype.is_floating_point:
        return "non-float-weight"
    w64 = w.data.detach().to(torch.float64)
    return w64, b.data.detach().to(torch.float64) if b is not None else w64.new_zeros(w64.shape[0])


def _weights(node: Node) -> list[Value]:
    return [v for v in node.inputs[1:] if v is not None]


def chain(graph: Graph, second: Node, first: Node, tally: Tally, grow: bool) -> bool:
    p1, p2 = _params(first), _params(second)
    for p in (p1, p2):
        if isinstance(p, str):
            tally.refuse(FAMILY_CHAIN, second.name, p)
            return False
    (w1, b1), (w2, b2) = p1, p2
    if w2.shape[0] * w1.shape[1] > w1.numel() + w2.numel() and not grow:
        tally.refuse(FAMILY_CHAIN, second.name, "more-macs")
        return False
    weights = _weights(first) + _weights(second)
    out = emit(graph, "linear", first.inputs[0], w2 @ w1, w2 @ b1 + b2, {}, name=stem(weights, [second]) + ".reparam",
               before=second, source=second.source, dtype=second.outputs[0].dtype,
               is_param=any(w.is_param for w in weights))
    graph.replace_all_uses(second.outputs[0], out)
    erase_dead(graph, [second, first])
    tally.fire(FAMILY_CHAIN, second.name)
    return True


def summed(graph: Graph, root: Node, tally: Tally) -> bool:
    out = root.outputs[0]
    if out.rank < 1 or not out.dtype.is_floating_point:
        return False
    leaves, adds = sum_tree(graph, root)
    features = out.shape[-1]
    linears: dict[Value, list[Node]] = {}
    others: list[Value] = []
    consts: list[Value] = []
    for value, reader in leaves:
        node = value.producer
        if per_channel(value, out, -1):
            consts.append(value)
        elif node is not None and node.op == "linear" and value.type == out.type and \
                owner(value, reader, leaves) is not None and len(value.users) == 1 and value not in graph.outputs:
            linears.setdefault(node.inputs[0], []).append(node)
        else:
            others.append(value)
    merged_any, summands, removable = False, [], list(adds)
    for x, nodes in linears.items():
        identities = [v for v in others if v is x] if x.type == out.type else []
        if len(nodes) + len(identities) < 2:
            summands += [n.outputs[0] for n in nodes]
            continue
        params = [_params(n) for n in nodes]
        reason = next((p for p in params if isinstance(p, str)), None)
        if reason is not None:
            tally.refuse(FAMILY_SUM, root.name, reason)
            summands += [n.outputs[0] for n in nodes]
            continue
        w = sum(p[0] for p in params) + len(identities) * torch.eye(features, dtype=torch.float64)
        b = sum(p[1] for p in params) + sum(as_vector(c, features) for c in consts)
        others = [v for v in others if v is not x]
        consts, merged_any = [], True
        weights = [v for n in nodes for v in _weights(n)]
        summands.insert(0, emit(graph, "linear", x, w, b, {}, name=stem(weights, nodes) + ".reparam", before=root,
                                source=root.source, dtype=out.dtype, is_param=any(v.is_param for v in weights)))
        removable += nodes
        tally.fire(FAMILY_SUM, root.name)
        tally.fired[f"{FAMILY_SUM}.branches"] += len(nodes) + len(identities)
    if not merged_any:
        return False
    graph.replace_all_uses(out, sum_values(graph, summands + others + consts, root, root.source))
    erase_dead(graph, removable)
    return True


def rules(tally: Tally, grow: bool) -> list[Rule]:
    return [Rule(FAMILY_CHAIN, CHAIN, lambda m: chain(m.graph, m.node, m["first"], tally, grow) or None),
            Rule(FAMILY_SUM, SUM_ROOT, lambda m: summed(m.graph, m.node, tally) or None)]

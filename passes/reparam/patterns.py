"""What the reparam rewrites share: sum trees, the tally, emitting results.

Sums of many branches (`a + b + c` is a chain of binary adds) are read as one tree whose leaves
are the summands. Node patterns are the compiler's (compiler/pattern.py).
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import torch

from compiler.ir import Graph, Node, Value
from compiler.pattern import Pattern, only_feeds


@dataclass
class Tally:
    """Per-family counts of rewrites that fired and, per candidate, the last reason it was refused."""

    fired: Counter = field(default_factory=Counter)
    refused: dict[tuple[str, str], str] = field(default_factory=dict)

    def fire(self, family: str, key: str, amount: int = 1) -> None:
        self.fired[family] += amount
        self.refused.pop((family, key), None)

    def refuse(self, family: str, key: str, reason: str) -> None:
        self.refused[(family, key)] = reason

    def stats(self) -> dict[str, int]:
        out: dict[str, int] = dict(sorted(self.fired.items()))
        reasons = Counter(f"refused.{family}.{reason}" for (family, _), reason in self.refused.items())
        out["refused"] = sum(reasons.values())
        out.update(sorted(reasons.items()))
        return out


# ---- sums --------------------------------------------------------------------------------------
def _inner_add(graph: Graph, value: Value, parent: Node, root: Node) -> Node | None:
    node = value.producer
    if node is None or node.op != "add" or not only_feeds(graph, value, parent):
        return None
    return node if value.type == root.outputs[0].type else None


def is_sum_root(graph: Graph, node: Node) -> bool:
    """An add whose result is not itself one summand of a bigger same-typed sum."""
    out = node.outputs[0]
    if node.op != "add":
        return False
    return not (len(out.users) == 1 and out not in graph.outputs and out.users[0].op == "add"
                and out.users[0].outputs[0].type == out.type)


SUM_ROOT = Pattern("add", where=lambda node: is_sum_root(node.graph, node))


def sum_tree(graph: Graph, root: Node) -> tuple[list[tuple[Value, Node]], list[Node]]:
    """The summands of the add tree rooted at `root` as (value, add reading it), and its adds."""
    leaves: list[tuple[Value, Node]] = []
    adds: list[Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        adds.append(node)
        twice = node.inputs[0] is node.inputs[1]  # x + x: both are summands, never expanded
        for v in reversed(node.inputs):
            inner = None if twice else _inner_add(graph, v, node, root)
            if inner is not None:
                stack.append(inner)
            else:
                leaves.append((v, node))
    return leaves, adds


def owner(value: Value, reader: Node, leaves: list[tuple[Value, Node]]) -> Node | None:
    """The reader, unless the value appears more than once (x + x): then nobody owns it."""
    return reader if sum(1 for v, _ in leaves if v is value) == 1 else None


def per_channel(value: Value, out: Value, axis: int) -> bool:
    """A constant that adds the same amount at every position of each channel of `out`."""
    if value.data is None or value.rank > out.rank or value.dtype != out.dtype:
        return False
    shape = (1,) * (out.rank - value.rank) + value.shape
    return all(n == 1 or (d == axis % out.rank and n == out.shape[d]) for d, n in enumerate(shape))


def as_vector(value: Value, channels: int) -> torch.Tensor:
    return value.data.detach().to(torch.float64).reshape(-1).expand(channels)


# ---- rewriting ---------------------------------------------------------------------------------
def erase_dead(graph: Graph, nodes: list[Node]) -> int:
    """Erase the given nodes that no longer feed anything; returns how many went."""
    outputs = set(graph.outputs)
    pending, erased = [n for n in nodes if n.graph is graph], 0
    progress = True
    while progress:
        progress = False
        for node in list(pending):
            if all(not v.users and v not in outputs for v in node.outputs):
                graph.erase_node(node)
                pending.remove(node)
                erased += 1
                progress = True
    return erased


def stem(weights: list[Value], nodes: list[Node]) -> str:
    """A readable name for a merged layer: the common dotted prefix of the merged weights."""
    stems = [w.name.rsplit(".", 1)[0] for w in weights if "." in w.name]
    if stems:
        prefix = os.path.commonprefix([s.split(".") for s in stems])
        if prefix:
            return ".".join(prefix)
        return stems[0]
    return nodes[0].name if nodes else "reparam"


def emit(graph: Graph, op: str, x: Value, weight: torch.Tensor, bias: torch.Tensor, attrs: dict,
         *, name: str, before: Node, source: str, dtype: torch.dtype, is_param: bool) -> Value:
    """A new op node reading new weight values (cast back from float64)."""
    w = graph.add_weight(f"{name}.weight", weight.to(dtype).contiguous(), is_param=is_param)
    b = graph.add_weight(f"{name}.bias", bias.to(dtype).contiguous(), is_param=is_param)
    node = graph.create_node(op, [x, w, b], attrs, name=name.replace(".", "_"), source=source, before=before)
    return node.outputs[0]


def sum_values(graph: Graph, values: list[Value], before: Node, source: str) -> Value:
    """values[0] + values[1] + ... as new add nodes."""
    total = values[0]
    for v in values[1:]:
        total = graph.create_node("add", [total, v], name="add", source=source, before=before).outputs[0]
    return total

"""Rewrite rules as data, and the one greedy driver that applies them to a fixpoint.

A `Rule` is a name, a `Pattern` (compiler/pattern.py) for the node it rewrites, and a function
that receives the `Match` and returns what replaces the node:

* `None`: nothing (a closer look refused it); the driver tries the node's next rule;
* a `Value`, or one per output: the driver points every use (and graph output) of the node's
  results at them, then erases whatever that left dead, back up through the inputs;
* `True`: the function edited the graph itself (and removed what it left dead).

`apply_rules(graph, rules)` visits the nodes in topological order with a worklist: a node whose
replacement came from a new node is visited again right away, so chains collapse in one sweep
(inputs are rewritten before their readers). The sweep repeats until nothing fires (a last,
confirming sweep), at most `max_iterations` times; rules given as `first` are brought to their
own fixpoint before each sweep. It returns how often each rule fired, by name, which is what a
pass puts in its stats.

`replacement_of` asks the same rules about a node before it exists (the frontends use it to
skip identities as they emit): only rules that forward existing values may be asked that way.
"""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence, Union

from compiler.errors import IRError
from compiler.ir import Graph, Node, TensorType, Value
from compiler.pattern import Bindings, Pattern

Replacement = Union[None, bool, Value, Sequence[Union[Value, None]]]


@dataclass(frozen=True)
class Match:
    """What a rule's rewrite function receives: the graph, the matched node, the bindings."""

    graph: Graph
    node: Node
    bound: Bindings

    def __getitem__(self, name: str) -> Any:
        return self.bound[name]


@dataclass(frozen=True)
class Rule:
    """A named rewrite: where `pattern` matches a node, `rewrite` says what replaces it."""

    name: str
    pattern: Pattern
    rewrite: Callable[[Match], Replacement]


def rules_by_op(rules: Iterable[Rule]) -> dict[str, list[Rule]]:
    """The rules to try on a node of each op, in the order given."""
    table: dict[str, list[Rule]] = {}
    for rule in rules:
        for op in rule.pattern.ops:
            table.setdefault(op, []).append(rule)
    return table


def apply_rules(graph: Graph, rules: Iterable[Rule], *, first: Iterable[Rule] = (),
                max_iterations: int | None = None) -> Counter:
    """Apply `rules` until none fires (or `max_iterations` sweeps); returns firings by rule name.

    `first` are rules brought to their own fixpoint before every sweep of `rules`: they take
    precedence (reparam folds every BatchNorm it can before it merges branches).
    """
    table, first_table = rules_by_op(rules), rules_by_op(first)
    fired: Counter = Counter()
    sweeps = 0
    while max_iterations is None or sweeps < max_iterations:
        sweeps += 1
        settled = False
        while first_table and _sweep(graph, first_table, fired):
            settled = True
        if not _sweep(graph, table, fired) and not settled:
            break
    return fired


def _sweep(graph: Graph, table: dict[str, list[Rule]], fired: Counter) -> bool:
    worklist = deque(n for n in graph.nodes if n.op in table)
    budget = 8 * len(graph) + 64  # far more rewrites than a settling rule set makes in one sweep
    changed = False
    while worklist:
        node = worklist.popleft()
        if node.graph is not graph:
            continue  # erased by an earlier rewrite
        for rule in table.get(node.op, ()):
            bound = rule.pattern.match_node(graph, node)
            if bound is None:
                continue
            result = rule.rewrite(Match(graph, node, bound))
            if result is None or result is False:
                continue
            fired[rule.name] += 1
            changed = True
            budget -= 1
            if budget < 0:
                raise IRError(f"the rewrite rules do not settle: rule {rule.name} keeps firing (now at "
                              f"{node.name}); firings so far: {dict(fired)}")
            if result is not True:
                new = _replace(graph, node, rule.name, result)
                worklist.extendleft(v.producer for v in new if v.producer is not None)
            break
    return changed


def _as_list(result: Value | Sequence[Value | None]) -> list[Value | None]:
    return [result] if isinstance(result, Value) else list(result)


def _replace(graph: Graph, node: Node, rule: str, result: Value | Sequence[Value | None]) -> list[Value]:
    """Point the uses of the node's results at `result`, then erase what that left dead."""
    new = _as_list(result)
    if len(new) != len(node.outputs):
        raise IRError(f"rule {rule} gave {len(new)} replacement(s) for the {len(node.outputs)} "
                      f"result(s) of {node.name} ({node.op})")
    for old, value in zip(node.outputs, new):
        if value is None or value is old:
            continue
        if value.type != old.type:
            raise IRError(f"rule {rule} replaced %{old.name}: {_type(old.type)} "
                          f"with %{value.name}: {_type(value.type)}")
        graph.replace_all_uses(old, value)
    _erase_if_dead(graph, node)
    return [v for v in new if v is not None]


def _erase_if_dead(graph: Graph, node: Node) -> int:
    """Erase `node` if nothing reads its results, then its producers that this left dead."""
    outputs = set(graph.outputs)
    stack, erased = [node], 0
    while stack:
        node = stack.pop()
        if node.graph is not graph or any(out.users or out in outputs for out in node.outputs):
            continue
        producers = [v.producer for v in node.inputs if v is not None and v.producer is not None]
        graph.erase_node(node)
        erased += 1
        stack.extend(producers)
    return erased


def replacement_of(graph: Graph, rules: dict[str, list[Rule]], op: str, inputs: Sequence[Value | None],
                   attrs: dict, out_types: Sequence[TensorType]) -> list[Value] | None:
    """What the first firing rule would replace `op(inputs)` with, asked before the node exists.

    `attrs` must be complete (defaults filled in). The rules must only forward values that
    already exist: the node is a probe outside the graph.
    """
    candidates = rules.get(op)
    if not candidates:
        return None
    probe = Node(op, list(inputs), attrs, name=op)
    probe.outputs = [Value(op, t, producer=probe) for t in out_types]
    for rule in candidates:
        bound = rule.pattern.match_node(graph, probe)
        result = rule.rewrite(Match(graph, probe, bound)) if bound is not None else None
        if result is None or result is False:
            continue
        if result is True:
            raise IRError(f"rule {rule.name} edits the graph; it cannot be asked before a node exists")
        new = _as_list(result)
        if any(v is None or v.producer is probe or v.type != t for v, t in zip(new, out_types)):
            raise IRError(f"rule {rule.name} does not forward an existing value of the same type")
        return new
    return None


def _type(t: TensorType) -> str:
    return f"{t.dtype}{list(t.shape)}"

"""Declarative matchers for a node and the values around it: the left-hand side of a rewrite rule.

    Pattern("permute", inputs=(Pattern("permute", name="inner", single_use=True),), name="outer")

matches a permute whose input 0 is produced by another permute that feeds nothing else, and binds
the two nodes as "outer" and "inner". The pieces:

* `Pattern(op, inputs, name, single_use, where, commutative)` matches the node producing a value:
  `op` is one op name or a tuple of them; `inputs` holds one sub-pattern per input position
  (`None` accepts anything there, positions past the tuple are not looked at); `name` binds the
  node; `where(node)` is any further predicate (attributes, types); a binary op that declares
  `Trait.COMMUTATIVE` is also tried with its two inputs swapped (`commutative=True/False` overrides).
* `Operand(name, constant, where)` matches any value (a graph input, a weight, a node result) and
  binds the value itself; `constant` requires it to hold data, `where(value)` checks the rest.
* `single_use` (on either) requires the matched value to feed nothing but the node above it and
  not to be a graph output, so a rewrite may remove its producer. At the root there is no node
  above; it is ignored there.
* A name bound twice must bind the same thing: `Pattern("maximum", (Operand("x"), Operand("x")))`
  matches `maximum(a, a)` only.

`match` returns the bindings (name -> Node for a Pattern, name -> Value for an Operand) or None.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from compiler.ir import Graph, Node, Value
from compiler.ops import Trait, find_op

Bindings = dict[str, Union[Node, Value]]


def only_feeds(graph: Graph, value: Value, node: Node) -> bool:
    """Whether `node` is the one reader of `value` (and the value is no graph output)."""
    return value.users == [node] and value not in graph.outputs


def _bind(bound: Bindings, name: str | None, item: Node | Value) -> bool:
    if name is None:
        return True
    if bound.setdefault(name, item) is not item:
        return False  # the name is already bound to something else
    return True


@dataclass(frozen=True)
class Operand:
    """Matches any value and binds it (the leaves of a pattern)."""

    name: str | None = None
    constant: bool = False
    single_use: bool = False
    where: Callable[[Value], bool] | None = None

    def match_into(self, graph: Graph, value: Value, reader: Node | None, bound: Bindings) -> bool:
        if self.constant and value.data is None:
            return False
        if self.single_use and reader is not None and not only_feeds(graph, value, reader):
            return False
        if self.where is not None and not self.where(value):
            return False
        return _bind(bound, self.name, value)


@dataclass(frozen=True)
class Pattern:
    """Matches the node that produces a value, its inputs position by position."""

    op: str | tuple[str, ...]
    inputs: tuple["Pattern | Operand | None", ...] = ()
    name: str | None = None
    single_use: bool = False
    where: Callable[[Node], bool] | None = None
    commutative: bool | None = None  # None: as the op declares (Trait.COMMUTATIVE)

    @property
    def ops(self) -> tuple[str, ...]:
        return (self.op,) if isinstance(self.op, str) else self.op

    def match(self, graph: Graph, value: Value, reader: Node | None = None) -> Bindings | None:
        """Bindings when `value` is produced by a matching node (read by `reader`), else None."""
        bound: Bindings = {}
        return bound if self.match_into(graph, value, reader, bound) else None

    def match_node(self, graph: Graph, node: Node) -> Bindings | None:
        """Bindings when `node` itself matches (as the root of a rule), else None."""
        bound: Bindings = {}
        return bound if self._match_node(graph, node, bound) else None

    def match_into(self, graph: Graph, value: Value, reader: Node | None, bound: Bindings) -> bool:
        node = value.producer
        if node is None:
            return False
        if self.single_use and reader is not None and not only_feeds(graph, value, reader):
            return False
        return self._match_node(graph, node, bound)

    def _match_node(self, graph: Graph, node: Node, bound: Bindings) -> bool:
        if node.op not in self.ops or (self.where is not None and not self.where(node)):
            return False
        orders = [self.inputs]
        if len(self.inputs) == 2 and self._commutes(node.op):
            orders.append(self.inputs[::-1])
        for order in orders:
            trial = dict(bound)
            if _bind(trial, self.name, node) and self._match_inputs(graph, node, order, trial):
                bound.update(trial)
                return True
        return False

    def _commutes(self, op: str) -> bool:
        if self.commutative is not None:
            return self.commutative
        opdef = find_op(op)
        return opdef is not None and opdef.has(Trait.COMMUTATIVE)

    @staticmethod
    def _match_inputs(graph: Graph, node: Node, patterns: tuple, bound: Bindings) -> bool:
        for i, pattern in enumerate(patterns):
            if pattern is None:
                continue
            if i >= len(node.inputs) or node.inputs[i] is None:
                return False
            if not pattern.match_into(graph, node.inputs[i], node, bound):
                return False
        return True

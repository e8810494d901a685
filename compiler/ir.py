"""The graph IR: SSA values typed with shape and dtype, nodes that apply registered ops.

A `Graph` owns its nodes, its explicit inputs and outputs, and its weights (values that hold a
torch tensor, shared with the source model rather than copied). Every value has exactly one
definition: a graph input, a weight, or one output of one node. Use lists are kept up to date by
the mutation helpers so rewrites stay linear in the graph size.
"""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import torch

from compiler.annotations import Annotated
from compiler.interface import Interface


@dataclass(frozen=True)
class TensorType:
    """Static shape and dtype of a value."""

    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def rank(self) -> int:
        return len(self.shape)

    @staticmethod
    def of(tensor: torch.Tensor) -> "TensorType":
        return TensorType(tuple(tensor.shape), tensor.dtype)


class Value(Annotated):
    """An SSA value. `data` is set for weights and constants, `producer` for node results."""

    __slots__ = ("name", "type", "producer", "data", "users", "is_param")

    def __init__(self, name: str, type: TensorType, *, producer: "Node | None" = None,
                 data: torch.Tensor | None = None, is_param: bool = False):
        super().__init__()
        self.name = name
        self.type = type
        self.producer = producer
        self.data = data
        self.users: list[Node] = []
        self.is_param = is_param

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> torch.dtype:
        return self.type.dtype

    @property
    def rank(self) -> int:
        return self.type.rank

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    def __repr__(self) -> str:
        return f"%{self.name}"


class Node(Annotated):
    """One application of a registered op to input values, defining output values."""

    __slots__ = ("op", "inputs", "outputs", "attrs", "name", "source", "graph", "_seq")

    def __init__(self, op: str, inputs: list[Value | None], attrs: dict[str, Any], name: str,
                 source: str = ""):
        super().__init__()
        self.op = op
        self.inputs = list(inputs)
        self.outputs: list[Value] = []
        self.attrs = dict(attrs)
        self.name = name
        self.source = source
        self.graph: Graph | None = None
        self._seq = 0.0

    @property
    def output(self) -> Value:
        """The single result of a one-output node."""
        if len(self.outputs) != 1:
            raise ValueError(f"node {self.name} ({self.op}) has {len(self.outputs)} outputs")
        return self.outputs[0]

    def input_if_constant(self, index: int) -> torch.Tensor | None:
        value = self.inputs[index] if index < len(self.inputs) else None
        return value.data if value is not None else None

    def __repr__(self) -> str:
        return f"Node({self.name}: {self.op})"


class Graph:
    """A dataflow graph in topological order."""

    def __init__(self, name: str = "main"):
        self.name = name
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.weights: dict[str, Value] = {}
        self._nodes: dict[Node, None] = {}
        self._names: set[str] = set()
        self._counter = itertools.count()
        self._sorted = True
        self.interface: Interface | None = None  # the source file's input/output names (interface.py)

    # ---- naming -------------------------------------------------------------------------
    def unique_name(self, hint: str) -> str:
        base = _sanitize(hint) or "v"
        name, i = base, 1
        while name in self._names:
            name = f"{base}_{i}"
            i += 1
        self._names.add(name)
        return name

    def rename(self, value: Value, name: str) -> None:
        """Give `value` an exact name (which must be free)."""
        if name != value.name:
            if name in self._names:
                raise ValueError(f"name %{name} is already taken")
            self._names.discard(value.name)
            self._names.add(name)
            value.name = name

    # ---- definitions ----------------------------------------------------------------------
    def add_input(self, name: str, type: TensorType) -> Value:
        value = Value(self.unique_name(name), type)
        self.inputs.append(value)
        return value

    def add_weight(self, name: str, tensor: torch.Tensor, *, is_param: bool = True) -> Value:
        """Register a tensor as a weight; the tensor is shared, not copied."""
        value = Value(self.unique_name(name), TensorType.of(tensor), data=tensor, is_param=is_param)
        self.weights[value.name] = value
        return value

    def rebind_weight(self, value: Value, tensor: torch.Tensor, user: Node) -> Value:
        """A weight value for `user` holding `tensor` in place of `value`'s data.

        When `user` is the only reader, the same value (and name) is rebound to the new tensor;
        the old tensor object is left untouched, it may belong to the user's model. A weight
        shared with other readers keeps its data and a new value is returned instead.
        """
        if value.users == [user] and value not in self.outputs and value.name in self.weights:
            value.data, value.type = tensor, TensorType.of(tensor)
            return value
        return self.add_weight(value.name, tensor, is_param=value.is_param)

    def add_constant(self, name: str, tensor: torch.Tensor) -> Value:
        """A non-trainable constant (folded results, scalars, index tables)."""
        return self.add_weight(name, tensor, is_param=False)

    def create_node(self, op: str, inputs: Iterable[Value | None], attrs: dict[str, Any] | None = None,
                    *, name: str | None = None, source: str = "", out_types: list[TensorType] | None = None,
                    before: Node | None = None) -> Node:
        """Create a node, infer (or take) its output types, and insert it.

        With `before`, the node goes right before that node; otherwise at the end of the order.
        """
        from compiler.ops import get_op

        opdef = get_op(op)
        attrs = opdef.complete_attrs(attrs or {})
        node = Node(op, list(inputs), attrs, self.unique_name(name or op), source)
        if out_types is None:
            out_types = opdef.infer([v.type if v is not None else None for v in node.inputs], attrs)
        for i, t in enumerate(out_types):  # a single result shares the node's name
            out_name = node.name if len(out_types) == 1 else self.unique_name(f"{node.name}.{i}")
            node.outputs.append(Value(out_name, t, producer=node))
        for v in node.inputs:
            if v is not None and node not in v.users:
                v.users.append(node)
        self._insert(node, before)
        return node

    def _insert(self, node: Node, before: Node | None) -> None:
        node.graph = self
        node._seq = float(next(self._counter))
        if before is not None:
            node._seq = before._seq - 0.5 / (1 + len(self._nodes))
            self._sorted = False
        self._nodes[node] = None

    # ---- queries ------------------------------------------------------------------------
    @property
    def nodes(self) -> list[Node]:
        if not self._sorted:
            self.toposort()
        return list(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node: Node) -> bool:
        return node in self._nodes

    def values(self) -> Iterator[Value]:
        yield from self.inputs
        yield from self.weights.values()
        for node in self.nodes:
            yield from node.outputs

    def param_count(self) -> int:
        """Parameters still used by some node (trainable weights only)."""
        return sum(w.type.numel for w in self.weights.values() if w.is_param and w.users)

    # ---- mutation -------------------------------------------------------------------------
    def replace_all_uses(self, old: Value, new: Value) -> None:
        """Make every user of `old` (and the graph outputs) read `new` instead."""
        if old is new:
            return
        for user in old.users:
            user.inputs = [new if v is old else v for v in user.inputs]
            if user not in new.users:
                new.users.append(user)
        old.users = []
        self.outputs = [new if v is old else v for v in self.outputs]
        self._sorted = False

    def set_input(self, node: Node, index: int, value: Value | None) -> None:
        """Point input `index` of `node` at `value`; absent optional inputs are filled with None."""
        node.inputs.extend([None] * (index + 1 - len(node.inputs)))
        old = node.inputs[index]
        node.inputs[index] = value
        if old is not None and old not in node.inputs:
            old.users = [u for u in old.users if u is not node]
        if value is not None and node not in value.users:
            value.users.append(node)
        self._sorted = False

    def erase_node(self, node: Node) -> None:
        """Remove a node whose outputs are unused."""
        for out in node.outputs:
            if out.users or out in self.outputs:
                raise ValueError(f"cannot erase {node.name}: output %{out.name} is still used")
        for v in node.inputs:
            if v is not None:
                v.users = [u for u in v.users if u is not node]
        del self._nodes[node]
        node.graph = None

    def eliminate_dead_code(self) -> tuple[int, int]:
        """Remove nodes no output depends on, then unused weights; returns both counts.

        Every registered op is pure, so one reverse sweep suffices: erasing a node drops its
        uses, and its producers are already dead when the sweep reaches them.
        """
        outputs = set(self.outputs)
        removed = 0
        for node in reversed(self.nodes):
            if all(not out.users and out not in outputs for out in node.outputs):
                self.erase_node(node)
                removed += 1
        return removed, self.remove_unused_weights()

    def remove_unused_weights(self) -> int:
        """Drop weights nothing reads: no node, no graph output, no annotation of a live value."""
        live = [v for v in self.inputs] + [v for n in self._nodes for v in n.outputs] + \
            [w for w in self.weights.values() if w.users or w in self.outputs]
        named = {name for v in live for a in v.annotations.values() for name in a.references()}
        dead = [name for name, w in self.weights.items() if not w.users and w not in self.outputs
                and name not in named]
        for name in dead:
            del self.weights[name]
        return len(dead)

    def toposort(self) -> None:
        """Stable topological order: keeps the existing order wherever dependencies allow."""
        nodes = list(self._nodes)
        pending = {n: sum(1 for v in n.inputs if v is not None and v.producer in self._nodes)
                   for n in nodes}
        heap = [(n._seq, i, n) for i, n in enumerate(nodes) if pending[n] == 0]
        heapq.heapify(heap)
        index = {n: i for i, n in enumerate(nodes)}
        order: list[Node] = []
        while heap:
            _, _, node = heapq.heappop(heap)
            order.append(node)
            for out in node.outputs:
                for user in out.users:
                    if user in pending:
                        pending[user] -= sum(1 for v in user.inputs if v is out)
                        if pending[user] == 0:
                            heapq.heappush(heap, (user._seq, index[user], user))
        if len(order) != len(nodes):
            stuck = sorted(n.name for n in nodes if pending[n] > 0)
            raise ValueError(f"graph has a cycle through: {', '.join(stuck[:5])}")
        self._nodes = dict.fromkeys(order)
        for i, node in enumerate(order):
            node._seq = float(i)
        self._counter = itertools.count(len(order))
        self._sorted = True


def _sanitize(hint: str) -> str:
    return "".join(c if (c.isascii() and c.isalnum()) or c in "._" else "_" for c in hint).strip("_")

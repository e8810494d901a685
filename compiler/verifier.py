"""Checks the IR's invariants; run by the pass manager after every pass.

Every problem found is reported at once: unknown ops, attribute schema violations, wrong arity,
values used before definition or never defined, use lists stale in either direction, types that
disagree with the op registry's shape inference, an op's own constraints (`OpDef.verify`),
annotations naming values that do not exist, and cycles.
"""
from __future__ import annotations

from compiler.errors import IRError, VerificationError
from compiler.ir import Graph, Node, Value
from compiler.ops import get_op

MAX_REPORTED = 20


def verify(graph: Graph) -> None:
    """Raise VerificationError listing every broken invariant."""
    problems: list[str] = []
    try:
        nodes = graph.nodes  # re-sorted (and checked for cycles) when a rewrite disturbed the order
    except ValueError as exc:  # cycle
        raise VerificationError(f"graph '{graph.name}' is not acyclic: {exc}") from None
    defined: set[Value] = set(graph.inputs) | set(graph.weights.values())
    names: dict[str, Value] = {}
    for v in defined:
        _check_name(v, names, problems)
        if v.data is not None and tuple(v.data.shape) != v.shape:
            problems.append(f"weight %{v.name}: data shape {list(v.data.shape)} != type {list(v.shape)}")
    for node in nodes:
        problems.extend(_check_node(node, defined))
        for out in node.outputs:
            _check_name(out, names, problems)
            defined.add(out)
        if len(problems) > MAX_REPORTED:
            break
    for v in graph.outputs:
        if v not in defined:
            problems.append(f"graph output %{v.name} is not defined in the graph")
    problems.extend(_check_uses(graph.inputs, graph.weights.values(), nodes))
    problems.extend(_check_annotations(graph.inputs, graph.weights.values(), nodes, names))
    if problems:
        shown = problems[:MAX_REPORTED]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise VerificationError(f"IR verification failed for graph '{graph.name}':\n  - "
                                + "\n  - ".join(shown) + more)


def _check_name(v: Value, names: dict[str, Value], problems: list[str]) -> None:
    if names.setdefault(v.name, v) is not v:
        problems.append(f"value name %{v.name} is defined twice")


def _check_node(node: Node, defined: set[Value]) -> list[str]:
    where = f"node %{node.name} ({node.op})"
    try:
        opdef = get_op(node.op)
    except IRError as exc:
        return [f"{where}: {exc.what}"]
    problems = []
    lo, hi = opdef.arity_range
    if len(node.inputs) < lo or (hi is not None and len(node.inputs) > hi):
        problems.append(f"{where}: takes {lo}..{hi if hi is not None else 'any'} inputs, "
                        f"has {len(node.inputs)}")
    for i, v in enumerate(node.inputs):
        required = opdef.variadic or not opdef.inputs[min(i, len(opdef.inputs) - 1)].endswith("?")
        if v is None:
            if required:
                problems.append(f"{where}: required input {i} is missing")
        elif v not in defined:
            problems.append(f"{where}: input %{v.name} is used before it is defined (or dangling)")
        elif node not in v.users:
            problems.append(f"{where}: not in the use list of its input %{v.name}")
    if problems:  # shape inference assumes the signature holds
        return problems
    try:
        if not opdef.attrs_valid(node.attrs):
            problems.append(f"{where}: attributes {node.attrs} do not match the op schema")
        inferred = opdef.infer([None if v is None else v.type for v in node.inputs], node.attrs)
    except IRError as exc:
        return problems + [f"{where}: {exc.what}"]
    problems.extend(f"{where}: {message}" for message in opdef.verify(
        [None if v is None else v.type for v in node.inputs], node.attrs))
    actual = [v.type for v in node.outputs]
    if inferred != actual:
        problems.append(f"{where}: output types {_types(actual)} disagree with inferred {_types(inferred)}")
    for out in node.outputs:
        if out.producer is not node:
            problems.append(f"{where}: output %{out.name} names another producer")
        for user in out.users:
            if user.graph is not node.graph:
                problems.append(f"{where}: output %{out.name} is used by erased node {user.name}")
    return problems


def _check_uses(inputs, weights, nodes: list[Node]) -> list[str]:
    """Every user recorded on a value reads it (the other direction is checked per node)."""
    problems = []
    values = [*inputs, *weights, *(out for node in nodes for out in node.outputs)]
    for v in values:
        for user in v.users:
            if v not in user.inputs:
                problems.append(f"value %{v.name}: use list names {user.name} ({user.op}), which does not read it")
    return problems


def _check_annotations(inputs, weights, nodes: list[Node], names: dict[str, Value]) -> list[str]:
    """Annotations that name other values (a quantization scale) must name existing ones."""
    problems = []
    holders = [*inputs, *weights, *nodes, *(out for node in nodes for out in node.outputs)]
    for holder in holders:
        for annotation in holder.annotations.values():
            for ref in annotation.references():
                if ref not in names:
                    kind = "node" if isinstance(holder, Node) else "value"
                    problems.append(f"{kind} %{holder.name}: {annotation.tag} annotation names %{ref}, "
                                    "which is not in the graph")
    return problems


def _types(types) -> str:
    from compiler.printer import format_type
    return "(" + ", ".join(format_type(t) for t in types) + ")"

"""Size and cost of nodes and graphs, from the op registry."""
from __future__ import annotations

from compiler.ir import Graph, Node
from compiler.ops import get_op


def node_macs(node: Node) -> int:
    inputs = [None if v is None else v.type for v in node.inputs]
    return get_op(node.op).macs(inputs, [v.type for v in node.outputs], node.attrs)


def graph_macs(graph: Graph) -> int:
    return sum(node_macs(n) for n in graph.nodes)


def graph_summary(graph: Graph) -> dict[str, int]:
    return {"nodes": len(graph), "params": graph.param_count(), "macs": graph_macs(graph)}

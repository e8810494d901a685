"""Runs a graph through the op registry's torch reference implementations."""
from __future__ import annotations

from typing import Sequence

import torch

from compiler.errors import UserInputError
from compiler.memory import check_graph
from compiler.ir import Graph, Value
from compiler.ops import get_op
from compiler.printer import format_type
from compiler.ir import TensorType


def check_inputs(graph: Graph, inputs: Sequence[torch.Tensor]) -> None:
    """Raise a clear error when inputs do not match the graph's declared input types."""
    if len(inputs) != len(graph.inputs):
        raise UserInputError(f"graph '{graph.name}' takes {len(graph.inputs)} input(s), got {len(inputs)}")
    for value, tensor in zip(graph.inputs, inputs):
        if not isinstance(tensor, torch.Tensor) or TensorType.of(tensor) != value.type:
            got = format_type(TensorType.of(tensor)) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise UserInputError(f"input %{value.name} expects {format_type(value.type)}, got {got}")


@torch.no_grad()
def interpret(graph: Graph, *inputs: torch.Tensor) -> list[torch.Tensor]:
    """Execute the graph; intermediate results are freed after their last use."""
    check_inputs(graph, inputs)
    check_graph(graph)  # the declared sizes must fit the memory limit before anything runs
    env: dict[Value, torch.Tensor] = dict(zip(graph.inputs, inputs))
    nodes = graph.nodes
    last_use = {}
    for i, node in enumerate(nodes):
        for v in node.inputs:
            if v is not None and v.producer is not None:
                last_use[v] = i
    keep = set(graph.outputs)
    for i, node in enumerate(nodes):
        args = [None if v is None else (v.data if v.data is not None else env[v]) for v in node.inputs]
        results = get_op(node.op).run(args, node.attrs)
        env.update(zip(node.outputs, results))
        for v in node.inputs:
            if v is not None and last_use.get(v) == i and v not in keep:
                env.pop(v, None)
    return [v.data if v.data is not None else env[v] for v in graph.outputs]

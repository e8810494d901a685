"""How closely onnxruntime reproduces the integer form, layer by layer and end to end.

End to end, one flipped code early in a deep network changes later inputs, so differences grow
with depth (as between any two integer deployments). Layer by layer, every layer + requantization
of the integer graph is exported alone (`onnx{quant=qdq}`) and fed the interpreter's own input
codes: what differs then is only the two rounding implementations (onnxruntime's float rescale
against the 31-bit fixed-point multiplier), near rounding ties.
"""
from __future__ import annotations

import torch

from compiler.backend import get_backend
from compiler.ir import Graph, Node, Value
from compiler.ops import get_op
from compiler.quant.int_annotation import IntAnnotation

LAYERS = ("int_conv", "int_linear", "int_matmul")


def all_values(graph: Graph, *inputs: torch.Tensor) -> dict[Value, torch.Tensor]:
    env: dict[Value, torch.Tensor] = dict(zip(graph.inputs, inputs))
    for node in graph.nodes:
        args = [None if v is None else (v.data if v.data is not None else env[v]) for v in node.inputs]
        env.update(zip(node.outputs, get_op(node.op).run(args, node.attrs)))
    return env


def _layer_graph(graph: Graph, nodes: tuple[Node, ...]) -> Graph:
    """The nodes alone: their activation inputs become graph inputs, annotations kept."""
    sub, env = Graph("layer"), {}

    def copy(v: Value | None) -> Value | None:
        if v is None or v in env:
            return env.get(v)
        env[v] = sub.add_constant(v.name, v.data) if v.data is not None else sub.add_input(v.name, v.type)
        _annotate(env[v], v)
        return env[v]

    def _annotate(new: Value, old: Value) -> None:
        ann = old.annotation(IntAnnotation)
        if ann is not None:
            for name in ann.references():
                if name not in sub.weights:
                    sub.add_constant(name, graph.weights[name].data)
            new.annotate(ann)

    for node in nodes:
        created = sub.create_node(node.op, [copy(v) for v in node.inputs], dict(node.attrs), name=node.name)
        env[node.output] = created.output
        _annotate(created.output, node.output)
    sub.outputs = [env[nodes[-1].output]]
    return sub


def _units(graph: Graph):
    """Each layer followed by a requantization to 8-bit codes, and each add of requantized codes
    requantized to 8-bit codes: (nodes in order)."""
    for node in graph.nodes:
        users = node.output.users
        if len(users) != 1 or users[0].op != "requantize" or users[0].output.dtype.itemsize != 1:
            continue
        if node.op in LAYERS:
            yield (node, users[0])
        elif node.op == "add" and all(v.producer is not None and v.producer.op == "requantize" and
                                      v.producer.inputs[0].dtype.itemsize == 1 for v in node.inputs):
            yield tuple(v.producer for v in node.inputs) + (node, users[0])


def per_layer_mismatches(graph: Graph, *inputs: torch.Tensor) -> tuple[int, float, int]:
    """(largest code difference, fraction of differing codes, units) over every layer or residual
    add followed by a requantization to 8-bit codes, each run alone in onnxruntime on the
    interpreter's inputs."""
    env = all_values(graph, *inputs)
    worst, differing, total, layers = 0, 0, 0, 0
    by_name = {v.name: v for v in graph.values()}
    for nodes in _units(graph):
        sub = _layer_graph(graph, nodes)
        (got,) = get_backend("onnx")().lower(sub, None).run(*[env[by_name[i.name]] for i in sub.inputs])
        d = (got.int() - env[nodes[-1].output].int()).abs()
        worst, layers = max(worst, int(d.max())), layers + 1
        differing, total = differing + int((d > 0).sum()), total + d.numel()
    return worst, differing / max(total, 1), layers


def end_to_end_mismatches(graph: Graph, *inputs: torch.Tensor, quant: str = "qdq") -> tuple[int, float]:
    """(largest code difference, fraction of differing codes) over every requantized tensor of the
    whole graph run in onnxruntime (`onnx{quant=...}`) against the interpreter."""
    outputs = graph.outputs
    graph.outputs = [n.output for n in graph.nodes if n.op == "requantize" and n.output.dtype.itemsize == 1]
    try:
        got = get_backend("onnx")(quant=quant).lower(graph, None).run(*inputs)
        env = all_values(graph, *inputs)
        ref = [env[v] for v in graph.outputs]
    finally:
        graph.outputs = outputs
    diffs = torch.cat([(a.int() - b.int()).abs().flatten() for a, b in zip(got, ref)])
    return int(diffs.max()), float((diffs > 0).float().mean())

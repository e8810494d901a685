"""dce: nodes and weights that reach no graph output are removed; everything else stays."""
from __future__ import annotations

import torch

from compiler.interpreter import interpret
from compiler.ir import Graph, TensorType
from compiler.verifier import verify
from passes.dce import DeadCodeElimination


def graph_with_dead_chain() -> Graph:
    """x -> linear -> relu (output); x -> linear -> sigmoid -> tanh (dead); an unused weight."""
    g = Graph("dead_chain")
    x = g.add_input("x", TensorType((2, 4), torch.float32))
    live = g.create_node("linear", [x, g.add_weight("live.weight", torch.randn(3, 4))], name="live")
    dead = g.create_node("linear", [x, g.add_weight("dead.weight", torch.randn(5, 4)),
                                     g.add_weight("dead.bias", torch.randn(5))], name="dead")
    g.create_node("tanh", [g.create_node("sigmoid", [dead.output]).output])
    g.add_weight("orphan", torch.randn(7))
    g.outputs = [g.create_node("relu", [live.output], name="out").output]
    verify(g)
    return g


def test_removes_dead_chain_and_unused_weights():
    g = graph_with_dead_chain()
    x = torch.randn(2, 4)
    (expected,) = interpret(g, x)
    result = DeadCodeElimination().run(g)
    verify(g)
    assert result.changed
    assert result.stats == {"removed_nodes": 3, "removed_weights": 3}
    assert [n.name for n in g.nodes] == ["live", "out"]
    assert set(g.weights) == {"live.weight"}
    assert torch.equal(interpret(g, x)[0], expected)


def test_keeps_graph_outputs_even_if_nothing_reads_them():
    g = Graph()
    x = g.add_input("x", TensorType((3,), torch.float32))
    a = g.create_node("relu", [x]).output
    b = g.create_node("neg", [a]).output
    g.outputs = [a, b]  # `a` is both an output and an intermediate
    w = g.add_weight("w", torch.ones(3))
    g.outputs.append(w)  # a weight returned directly is kept too
    assert not DeadCodeElimination().run(g).changed
    assert len(g) == 2 and "w" in g.weights


def test_unchanged_graph_reports_no_change():
    g = graph_with_dead_chain()
    DeadCodeElimination().run(g)
    result = DeadCodeElimination().run(g)
    assert not result.changed and result.stats == {"removed_nodes": 0, "removed_weights": 0}


def test_multi_output_node_is_live_if_any_output_is_used():
    g = Graph()
    x = g.add_input("x", TensorType((6,), torch.float32))
    parts = g.create_node("split", [x], {"sizes": (2, 4), "dim": 0}).outputs
    g.outputs = [parts[1]]
    assert not DeadCodeElimination().run(g).changed
    g.outputs = [x]
    assert DeadCodeElimination().run(g).stats["removed_nodes"] == 1
    verify(g)

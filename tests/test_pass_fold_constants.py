"""fold-constants: all-constant nodes become constants; anything touching an input stays."""
from __future__ import annotations

import torch

from compiler.interpreter import interpret
from compiler.ir import Graph, TensorType
from compiler.pipeline import parse_pipeline
from compiler.verifier import verify
from passes.fold_constants import FoldConstants


def transposed_weight_graph():
    """y = x @ reshape(permute(w)) + (c1 + c2): the weight path and the bias path are constant."""
    g = Graph("consts")
    x = g.add_input("x", TensorType((2, 6), torch.float32))
    w = g.add_weight("w", torch.randn(2, 3, 4))
    wt = g.create_node("permute", [w], {"dims": (2, 0, 1)}, name="wt").output       # [4, 2, 3]
    w2 = g.create_node("reshape", [wt], {"shape": (4, 6)}, name="w2").output
    c1 = g.add_constant("c1", torch.randn(4))
    c2 = g.add_constant("c2", torch.randn(4))
    b = g.create_node("add", [c1, c2], name="b").output
    y = g.create_node("linear", [x, w2, b], name="y").output
    g.outputs = [g.create_node("relu", [y], name="out").output]
    verify(g)
    return g, torch.randn(2, 6)


def test_folds_constant_chains():
    torch.manual_seed(0)
    g, x = transposed_weight_graph()
    w = g.weights["w"].data
    w_before = w.clone()
    (expected,) = interpret(g, x)
    result = FoldConstants().run(g)
    verify(g)
    # w, c1, c2 and the intermediate permute result are no longer read by anything.
    assert result.changed and result.stats == {"folded": 3, "skipped": 0, "removed_weights": 4}
    assert [n.op for n in g.nodes] == ["linear", "relu"]  # input-dependent nodes stay
    # Same numbers; only the weight's memory layout (hence the matmul kernel) differs.
    torch.testing.assert_close(interpret(g, x)[0], expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(w, w_before)
    weight, bias = g.nodes[0].inputs[1:]
    # A reshape of a permute of a parameter is still that parameter; an add is a new constant.
    assert weight.is_param and not bias.is_param
    assert weight.data.is_contiguous() and weight.data.untyped_storage().data_ptr() != w.data_ptr()
    assert g.param_count() == w.numel()


def test_reshape_of_a_constant_is_not_a_param():
    g = Graph()
    x = g.add_input("x", TensorType((2, 2), torch.float32))
    c = g.create_node("reshape", [g.add_constant("c", torch.arange(4.0))], {"shape": (2, 2)})
    g.outputs = [g.create_node("mul", [x, c.output]).output]
    FoldConstants().run(g)
    assert not g.nodes[0].inputs[1].is_param


def test_max_elements_is_respected():
    g, x = transposed_weight_graph()
    result = FoldConstants(max_elements=20).run(g)  # the 24-element permute is too big...
    verify(g)
    assert result.stats["folded"] == 1 and result.stats["skipped"] == 1  # ...so its reshape waits
    assert [n.op for n in g.nodes] == ["permute", "reshape", "linear", "relu"]


def test_graph_without_constant_nodes_is_unchanged():
    g = Graph()
    x = g.add_input("x", TensorType((3,), torch.float32))
    g.outputs = [g.create_node("add", [x, g.add_constant("one", torch.ones(3))]).output]
    result = FoldConstants().run(g)
    assert not result.changed and result.stats == {"folded": 0, "skipped": 0}


def test_constant_graph_output_and_dead_nodes():
    """A folded graph output becomes a constant output; dead constant nodes are left for dce."""
    g = Graph()
    g.add_input("x", TensorType((1,), torch.float32))
    c = g.add_constant("c", torch.tensor([4.0]))
    g.create_node("sqrt", [c], name="dead")
    g.outputs = [g.create_node("neg", [c], name="n").output]
    result = FoldConstants().run(g)
    verify(g)
    assert result.stats["folded"] == 1 and [n.name for n in g.nodes] == ["dead"]
    assert torch.equal(interpret(g, torch.zeros(1))[0], torch.tensor([-4.0]))


def test_multi_output_split_folds():
    g = Graph()
    x = g.add_input("x", TensorType((2,), torch.float32))
    parts = g.create_node("split", [g.add_weight("w", torch.arange(6.0))],
                          {"sizes": (2, 4), "dim": 0}).outputs
    g.outputs = [g.create_node("add", [x, parts[0]]).output]
    assert FoldConstants().run(g).stats["folded"] == 1
    verify(g)
    assert torch.equal(interpret(g, torch.zeros(2))[0], torch.tensor([0.0, 1.0]))
    assert g.param_count() == 2  # only the used slice of the parameter is still counted


def test_option_parses_from_pipeline_text():
    pipeline = parse_pipeline("fold-constants{max-elements=64},dce,fold-bn")
    assert pipeline.passes[0] == FoldConstants(max_elements=64)
    assert str(pipeline) == "fold-constants{max-elements=64},dce,fold-bn"

"""canonicalize: every identity rule fires where it should, bit-exactly, and never where
broadcasting or type promotion make the op more than an identity."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from compiler.annotations import Annotation
from compiler.frontend import import_model
from compiler.identities import IDENTITY_RULES, MOVEMENT_IDENTITIES
from compiler.interpreter import interpret
from compiler.ir import Graph, TensorType
from compiler.pipeline import parse_pipeline
from compiler.verifier import verify
from passes.canonicalize import CANONICAL_RULES, Canonicalize

SHAPE = (2, 3, 4, 5)


@dataclass(frozen=True)
class Marked(Annotation):
    tag = "test-canonical-mark"
    bits: int


def special_values(shape, dtype=torch.float32) -> torch.Tensor:
    """Random numbers plus the values identities must keep: inf, -inf, nan, -0.0."""
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(dtype)
    if dtype.is_floating_point:
        flat = x.view(-1)
        flat[:4] = torch.tensor([float("inf"), float("-inf"), float("nan"), -0.0])
    elif dtype == torch.bool:
        x = x > 0
    return x


def one_op(op: str, inputs=(), attrs=None, *, shape=SHAPE, dtype=torch.float32, consts=()) -> Graph:
    """out = op(...) on an input x and constants c0, c1...; `inputs` names the arguments in order."""
    g = Graph(op)
    x = g.add_input("x", TensorType(shape, dtype))
    values = {"x": x} | {f"c{i}": g.add_constant(f"c{i}", c) for i, c in enumerate(consts)}
    args = [values[name] for name in (inputs or ("x",))]
    node = g.create_node(op, args, attrs)
    g.outputs = [node.outputs[0]]
    verify(g)
    return g


def canonicalized(g: Graph):
    """Run the pass; the outputs must be bit-identical (nan where nan) on special values."""
    x = special_values(g.inputs[0].shape, g.inputs[0].dtype)
    before = interpret(g, x)
    result = Canonicalize().run(g)
    verify(g)
    for a, b in zip(before, interpret(g, x)):
        torch.testing.assert_close(b, a, rtol=0, atol=0, equal_nan=True)
    return result


ONES, ZEROS = torch.ones(5), torch.zeros(())
FIRES = {
    "reshape-identity": lambda: one_op("reshape", attrs={"shape": SHAPE}),
    "permute-identity": lambda: one_op("permute", attrs={"dims": (-4, 1, 2, -1)}),
    "cast-identity": lambda: one_op("cast", attrs={"dtype": torch.float32}),
    "expand-identity": lambda: one_op("expand", attrs={"shape": SHAPE}),
    "tile-identity": lambda: one_op("tile", attrs={"repeats": (1, 1, 1, 1)}),
    "slice-identity": lambda: one_op("slice", attrs={"dim": 2, "start": 0, "end": 99}),
    "pad-identity": lambda: one_op("pad", attrs={"pads": (0, 0, 0, 0), "mode": "reflect"}),
    "concat-identity": lambda: one_op("concat", attrs={"dim": 1}),
    "split-identity": lambda: one_op("split", attrs={"sizes": (3,), "dim": 1}),
    "mul-by-one": lambda: one_op("mul", ("c0", "x"), consts=[ONES]),
    "add-zero": lambda: one_op("add", ("x", "c0"), consts=[ZEROS]),
    "sub-zero": lambda: one_op("sub", ("x", "c0"), consts=[ZEROS]),
    "div-by-one": lambda: one_op("div", ("x", "c0"), consts=[ONES]),
    "pool-identity": lambda: one_op("max_pool", attrs={"kernel": (1, 1), "stride": (1, 1), "padding": (0, 0),
                                                       "dilation": (1, 1)}),
    "adaptive-pool-identity": lambda: one_op("adaptive_avg_pool", attrs={"output_size": (4, 5)}),
    "resize-identity": lambda: one_op("resize", attrs={"size": (4, 5)}),
    "reduce-identity": lambda: one_op("reduce_sum", attrs={"dims": (1,), "keepdim": True}, shape=(2, 1, 4, 5)),
    "max-min-of-same": lambda: one_op("maximum", ("x", "x")),
    "where-same": lambda: one_op("where", ("c0", "x", "x"), consts=[torch.rand(5) > 0.5]),
    "double-negation": lambda: _chain("neg", "neg"),
    "double-not": lambda: _chain("logical_not", "logical_not", dtype=torch.bool),
}


def _chain(*ops: str, dtype=torch.float32) -> Graph:
    g = Graph("chain")
    y = g.add_input("x", TensorType(SHAPE, dtype))
    for op in ops:
        y = g.create_node(op, [y]).output
    g.outputs = [y]
    return g


def test_every_identity_rule_has_a_case():
    assert {r.name for r in IDENTITY_RULES} == set(FIRES)


@pytest.mark.parametrize("rule", sorted(FIRES))
def test_identity_rule_removes_the_op_exactly(rule):
    g = FIRES[rule]()
    result = canonicalized(g)
    assert result.changed and result.stats[rule] == 1
    assert len(g) == 0 and g.outputs == g.inputs


NEVER = {
    "mul by ones that broadcasts x": lambda: one_op("mul", ("x", "c0"), shape=(2, 3, 4, 1), consts=[ONES]),
    "mul by ones that promotes int to float": lambda: one_op("mul", ("x", "c0"), dtype=torch.int64, consts=[ONES]),
    "mul by ones that promotes half to float": lambda: one_op("mul", ("x", "c0"), dtype=torch.float16,
                                                              consts=[ONES]),
    "add of zeros that broadcasts x": lambda: one_op("add", ("c0", "x"), shape=(2, 3, 4, 1), consts=[torch.zeros(5)]),
    "add of a nan": lambda: one_op("add", ("x", "c0"), consts=[torch.tensor(float("nan"))]),
    "zero minus x": lambda: one_op("sub", ("c0", "x"), consts=[ZEROS]),
    "floor division by one": lambda: one_op("div", ("x", "c0"), {"rounding_mode": "floor"}, consts=[ONES]),
    "true division of ints by one": lambda: one_op("div", ("x", "c0"), dtype=torch.int64,
                                                   consts=[torch.ones(5, dtype=torch.int64)]),
    "a cast to another dtype": lambda: one_op("cast", attrs={"dtype": torch.float64}),
    "a permute that moves": lambda: one_op("permute", attrs={"dims": (0, 2, 1, 3)}),
    "pads that shift but keep the shape": lambda: one_op("pad", attrs={"pads": (1, -1)}),
    "a slice that skips the first": lambda: one_op("slice", attrs={"dim": 0, "start": 1, "end": 2}),
    "a linear resize to the same size": lambda: one_op("resize", attrs={"size": (4, 5), "mode": "bilinear"}),
    "max of two values": lambda: one_op("maximum", ("x", "c0"), consts=[ZEROS]),
    "a 2x2 pool": lambda: one_op("avg_pool", attrs={"kernel": (2, 2), "stride": (1, 1), "padding": (0, 0)}),
}


@pytest.mark.parametrize("case", sorted(NEVER))
def test_rules_do_not_fire_where_the_op_is_no_identity(case):
    g = NEVER[case]()
    ops = [n.op for n in g.nodes]
    result = canonicalized(g)
    assert not result.changed and result.stats == {} and [n.op for n in g.nodes] == ops


@pytest.mark.parametrize("inner, outer, left", [
    ((0, 2, 3, 1), (0, 3, 1, 2), []),                    # cancel: x comes back
    ((1, 0, 2, 3), (0, 1, 3, 2), [(1, 0, 3, 2)]),        # compose into one permute
    ((0, 2, 3, 1), (-4, -1, -3, -2), []),                # negative dims normalize
])
def test_permute_chains_cancel_or_compose(inner, outer, left):
    g = Graph("permutes")
    x = g.add_input("x", TensorType(SHAPE, torch.float32))
    y = g.create_node("permute", [x], {"dims": inner}).output
    g.outputs = [g.create_node("permute", [y], {"dims": outer}).output]
    result = canonicalized(g)
    assert result.stats["permute-chain"] == 1
    assert [n.attrs["dims"] for n in g.nodes] == left


def test_reshape_chains_collapse_into_one_reshape_or_none():
    g = Graph("reshapes")
    x = g.add_input("x", TensorType(SHAPE, torch.float32))
    y = x
    for shape in [(6, 20), (120,), (2, 60), (6, 4, 5)]:
        y = g.create_node("reshape", [y], {"shape": shape}).output
    back = g.create_node("reshape", [y], {"shape": SHAPE}).output
    g.outputs = [y, g.create_node("relu", [back]).output]
    result = canonicalized(g)
    assert result.stats == {"reshape-chain": 4, "removed_weights": 0}
    assert [(n.op, n.inputs[0] is x) for n in g.nodes] == [("reshape", True), ("relu", True)]


def test_a_shared_inner_permute_stays_for_its_other_reader():
    g = Graph("shared")
    x = g.add_input("x", TensorType(SHAPE, torch.float32))
    t = g.create_node("permute", [x], {"dims": (0, 1, 3, 2)}).output
    g.outputs = [t, g.create_node("permute", [t], {"dims": (0, 1, 3, 2)}).output]
    canonicalized(g)
    assert [n.op for n in g.nodes] == ["permute"] and g.outputs == [t, x]


def test_an_identity_whose_result_is_annotated_stays():
    g = one_op("reshape", attrs={"shape": SHAPE})
    g.outputs[0].annotate(Marked(bits=4))
    assert not canonicalized(g).changed and [n.op for n in g.nodes] == ["reshape"]
    g.inputs[0].annotate(Marked(bits=4))  # the same fact holds for x: nothing is lost
    assert canonicalized(g).stats["reshape-identity"] == 1


def test_unused_constants_go_with_the_ops_that_read_them():
    g = one_op("mul", ("x", "c0"), consts=[ONES])
    assert canonicalized(g).stats == {"mul-by-one": 1, "removed_weights": 1} and not g.weights


class Identities(nn.Module):
    def forward(self, x):
        y = x.reshape(x.shape).permute(0, 1, 2, 3).float()[:, :].expand(2, 3, 4, 5)
        return torch.cat([y], 1) * 1.0 + 0


def test_frontends_skip_data_movement_identities_and_canonicalize_the_arithmetic():
    """The torch.fx frontend asks the movement rules canonicalize also holds; the arithmetic
    identities written in the model stay until canonicalize runs."""
    assert set(MOVEMENT_IDENTITIES) <= set(IDENTITY_RULES) <= set(CANONICAL_RULES)
    x = torch.randn(SHAPE)
    graph = import_model(Identities(), (x,))
    assert [n.op for n in graph.nodes] == ["mul", "add"]
    result = canonicalized(graph)
    assert result.stats == {"add-zero": 1, "mul-by-one": 1, "removed_weights": 2} and len(graph) == 0


def test_pipeline_text_and_empty_stats_on_a_canonical_graph():
    (pass_,) = parse_pipeline("canonicalize").passes
    assert pass_ == Canonicalize() and str(pass_) == "canonicalize"
    g = _chain("relu", "neg")
    assert canonicalized(g) == type(canonicalized(g))(False, {})

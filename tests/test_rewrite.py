"""The rewrite engine: patterns bind what they match, rules fire to a fixpoint, counted by name."""
from __future__ import annotations

import pytest
import torch

from compiler.errors import IRError
from compiler.ir import Graph, TensorType
from compiler.pattern import Operand, Pattern
from compiler.rewrite import Rule, apply_rules, replacement_of, rules_by_op
from compiler.verifier import verify

F32 = torch.float32


def graph_with_input(shape=(2, 3)) -> tuple[Graph, object]:
    g = Graph()
    return g, g.add_input("x", TensorType(shape, F32))


def chain(g: Graph, x, *ops: str):
    """x -> ops[0] -> ops[1] ...; returns the last value."""
    for op in ops:
        x = g.create_node(op, [x], name=op).output
    return x


# ---- matching --------------------------------------------------------------------------------
def test_pattern_binds_nodes_and_operand_binds_values():
    g, x = graph_with_input()
    y = chain(g, x, "relu", "neg")
    bound = Pattern("neg", (Pattern("relu", (Operand("src"),), name="inner"),), name="outer").match(g, y)
    assert bound == {"outer": y.producer, "inner": y.producer.inputs[0].producer, "src": x}
    assert Pattern("neg", (Pattern("sigmoid"),)).match(g, y) is None   # wrong op at input 0
    assert Pattern("relu").match(g, x) is None                          # a graph input has no producer
    assert Pattern(("sigmoid", "neg")).match_node(g, y.producer) == {}  # one of several ops


def test_single_use_refuses_a_value_with_other_readers():
    g, x = graph_with_input()
    r = chain(g, x, "relu")
    y = chain(g, r, "neg")
    pattern = Pattern("neg", (Pattern("relu", single_use=True, name="r"),))
    assert pattern.match(g, y) is not None
    g.create_node("sigmoid", [r])                     # a second reader of relu's result
    assert pattern.match(g, y) is None
    assert Pattern("neg", (Pattern("relu", name="r"),)).match(g, y) is not None
    g2, x2 = graph_with_input()
    r2 = chain(g2, x2, "relu")
    g2.outputs = [r2, chain(g2, r2, "neg")]          # a graph output is used outside the graph
    assert pattern.match(g2, g2.outputs[1]) is None


def test_predicates_and_constant_operands():
    g, x = graph_with_input()
    two = g.add_constant("two", torch.full((3,), 2.0))
    y = g.create_node("mul", [x, two]).output
    twos = Operand("c", constant=True, where=lambda v: bool((v.data == 2).all()))
    assert Pattern("mul", (Operand("x"), twos)).match(g, y) == {"x": x, "c": two}
    assert Pattern("mul", (twos, Operand("x"))).match(g, y) == {"x": x, "c": two}  # mul is COMMUTATIVE
    assert Pattern("mul", (twos, Operand("x")), commutative=False).match(g, y) is None  # order kept
    z = g.create_node("sub", [x, two]).output
    assert Pattern("sub", (twos, Operand("x"))).match(g, z) is None            # sub is not
    assert Pattern("mul", (Operand("x", constant=True), None), commutative=False).match(g, y) is None
    assert Pattern("mul", where=lambda n: n.outputs[0].rank == 3).match(g, y) is None


def test_a_name_bound_twice_must_bind_the_same_value():
    g, x = graph_with_input()
    same = g.create_node("maximum", [x, x]).output
    other = g.create_node("maximum", [x, chain(g, x, "relu")]).output
    pattern = Pattern("maximum", (Operand("a"), Operand("a")))
    assert pattern.match(g, same) == {"a": x}
    assert pattern.match(g, other) is None


# ---- the driver ------------------------------------------------------------------------------
DOUBLE_NEG = Rule("double-neg", Pattern("neg", (Pattern("neg", (Operand("x"),)),)), lambda m: m["x"])


def test_driver_reaches_the_fixpoint_counts_firings_and_removes_dead_code():
    g, x = graph_with_input()
    y = chain(g, x, "neg", "neg", "neg", "neg", "neg", "relu")   # -(-(-(-(-x))))
    g.outputs = [y]
    unrelated_dead = chain(g, x, "sigmoid")                       # dead before: not the driver's business
    fired = apply_rules(g, [DOUBLE_NEG])
    verify(g)
    assert fired == {"double-neg": 2}
    assert [n.op for n in g.nodes] == ["neg", "relu", "sigmoid"]
    assert g.outputs[0].producer.inputs[0].producer.inputs[0] is x
    assert unrelated_dead.producer in g
    assert apply_rules(g, [DOUBLE_NEG]) == {}                     # a fixpoint: nothing more fires


def test_rules_are_tried_in_order_and_none_means_not_here():
    g, x = graph_with_input()
    g.outputs = [chain(g, x, "neg", "neg")]
    calls = []

    def refuse(m):
        calls.append(m.node.name)
        return None

    fired = apply_rules(g, [Rule("refuses", Pattern("neg"), refuse), DOUBLE_NEG])
    assert fired == {"double-neg": 1} and g.outputs == [x] and len(g) == 0
    assert calls == ["neg", "neg_1"]  # the refusing rule was asked first at each neg


def test_a_new_node_is_visited_again_so_chains_collapse_in_one_sweep():
    """reshape(reshape(reshape(x))) -> one reshape, by a rule that builds a node."""
    g, x = graph_with_input((2, 3, 4))
    y = x
    for shape in [(6, 4), (24,), (4, 6), (2, 12)]:
        y = g.create_node("reshape", [y], {"shape": shape}).output
    g.outputs = [y]
    sweeps = []

    def collapse(m):
        sweeps.append(m.node.name)
        return m.graph.create_node("reshape", [m["x"]], {"shape": m.node.attrs["shape"]}, before=m.node).output

    rule = Rule("reshape-chain", Pattern("reshape", (Pattern("reshape", (Operand("x"),)),)), collapse)
    assert apply_rules(g, [rule]) == {"reshape-chain": 3}
    assert [n.op for n in g.nodes] == ["reshape"] and g.nodes[0].inputs[0] is x
    assert g.outputs[0].shape == (2, 12)


def test_first_rules_settle_before_each_sweep_of_the_others():
    """relu(neg(neg(x))) -> relu(x) must happen before the relu rule looks at its input."""
    g, x = graph_with_input()
    g.outputs = [chain(g, x, "neg", "neg", "relu")]
    seen = []

    def record(m):
        seen.append(m.node.inputs[0] is x)
        return None

    fired = apply_rules(g, [Rule("look", Pattern("relu"), record)], first=[DOUBLE_NEG])
    assert fired == {"double-neg": 1} and seen and all(seen)


def relu_again(m):
    """relu(x) -> a new relu(x), in place: fires once per sweep, forever."""
    new = m.graph.create_node("relu", m.node.inputs, before=m.node).output
    m.graph.replace_all_uses(m.node.output, new)
    m.graph.erase_node(m.node)
    return True


def test_max_iterations_bounds_the_sweeps():
    g, x = graph_with_input()
    g.outputs = [chain(g, x, "relu")]
    assert apply_rules(g, [Rule("again", Pattern("relu"), relu_again)], max_iterations=3) == {"again": 3}


def test_rules_that_never_settle_within_a_sweep_are_a_clear_error():
    g, x = graph_with_input()
    g.outputs = [chain(g, x, "relu")]

    def grow(m):  # relu(x) -> relu(relu(x)): the new relu matches again, forever
        inner = m.graph.create_node("relu", m.node.inputs, before=m.node).output
        return m.graph.create_node("relu", [inner], before=m.node).output

    with pytest.raises(IRError, match="the rewrite rules do not settle.*rule grow"):
        apply_rules(g, [Rule("grow", Pattern("relu"), grow)])


def test_in_place_rewrites_return_true_and_clean_up_themselves():
    g, x = graph_with_input()
    y = chain(g, x, "sigmoid")
    g.outputs = [y]

    def swap(m):
        node = m.node
        tanh = m.graph.create_node("tanh", node.inputs, before=node).output
        m.graph.replace_all_uses(node.output, tanh)
        m.graph.erase_node(node)
        return True

    assert apply_rules(g, [Rule("sigmoid-to-tanh", Pattern("sigmoid"), swap)]) == {"sigmoid-to-tanh": 1}
    assert [n.op for n in g.nodes] == ["tanh"]


def test_a_replacement_of_another_type_is_a_clear_error():
    g, x = graph_with_input()
    g.outputs = [g.create_node("reshape", [x], {"shape": (6,)}).output]
    wrong = Rule("wrong", Pattern("reshape", (Operand("x"),)), lambda m: m["x"])
    with pytest.raises(IRError, match=r"rule wrong replaced %reshape: torch.float32\[6\] with %x"):
        apply_rules(g, [wrong])


def test_replacement_of_asks_forwarding_rules_before_a_node_exists():
    g, x = graph_with_input()
    n = chain(g, x, "neg")
    table = rules_by_op([DOUBLE_NEG])
    assert replacement_of(g, table, "neg", [n], {}, [x.type]) == [x]
    assert replacement_of(g, table, "neg", [x], {}, [x.type]) is None
    assert replacement_of(g, table, "relu", [n], {}, [x.type]) is None
    assert len(g) == 1  # nothing was created

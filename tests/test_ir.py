"""The IR: building graphs, printing them, verifying them, running them."""
import pytest
import torch

from compiler.errors import IRError, UserInputError, VerificationError
from compiler.interpreter import interpret
from compiler.ir import Graph, TensorType
from compiler.printer import print_graph
from compiler.verifier import verify

F32 = torch.float32


def conv_relu_graph() -> Graph:
    g = Graph("tiny")
    x = g.add_input("x", TensorType((1, 3, 8, 8), F32))
    w = g.add_weight("conv.weight", torch.ones(4, 3, 3, 3))
    conv = g.create_node("conv", [x, w, None], {"stride": (1, 1), "padding": (1, 1), "dilation": (1, 1)},
                         name="conv", source="conv")
    relu = g.create_node("relu", [conv.output], name="relu")
    g.outputs = [relu.output]
    return g


def test_printer_is_stable_readable_text():
    assert print_graph(conv_relu_graph()) == (
        "graph tiny(%x: f32[1,3,8,8]) {\n"
        "  %conv.weight: f32[4,3,3,3] = weight\n"
        "  %conv: f32[1,4,8,8] = conv(%x, %conv.weight, None) "
        "{dilation=[1,1], groups=1, padding=[1,1], stride=[1,1]}  # conv\n"
        "  %relu: f32[1,4,8,8] = relu(%conv)\n"
        "  return %relu\n"
        "}\n")


def test_shapes_are_inferred_from_the_op_registry():
    g = conv_relu_graph()
    split = g.create_node("split", [g.outputs[0]], {"sizes": (1, 3), "dim": 1})
    assert [v.shape for v in split.outputs] == [(1, 1, 8, 8), (1, 3, 8, 8)]


def test_weights_are_shared_not_copied():
    weight = torch.randn(4, 3)
    g = Graph()
    value = g.add_weight("w", weight)
    assert value.data.data_ptr() == weight.data_ptr()


def test_interpreter_runs_the_reference_implementations():
    g = conv_relu_graph()
    x = torch.randn(1, 3, 8, 8)
    expected = torch.relu(torch.nn.functional.conv2d(x, torch.ones(4, 3, 3, 3), padding=1))
    assert torch.equal(interpret(g, x)[0], expected)


def test_interpreter_rejects_inputs_of_the_wrong_shape():
    with pytest.raises(UserInputError, match=r"expects f32\[1,3,8,8\], got f32\[1,3,9,9\]"):
        interpret(conv_relu_graph(), torch.randn(1, 3, 9, 9))


def test_bad_attributes_are_rejected_when_building():
    g = conv_relu_graph()
    with pytest.raises(IRError, match="attribute 'dim' expects int"):
        g.create_node("softmax", [g.outputs[0]], {"dim": "last"})
    with pytest.raises(IRError, match="has no attribute"):
        g.create_node("relu", [g.outputs[0]], {"inplace": True})


def test_verifier_reports_a_type_that_disagrees_with_inference():
    g = conv_relu_graph()
    relu = g.nodes[-1]
    relu.outputs[0].type = TensorType((1, 4, 8, 9), F32)
    with pytest.raises(VerificationError, match="disagree with inferred"):
        verify(g)


def test_verifier_reports_dangling_values_and_undefined_outputs():
    g = conv_relu_graph()
    other = conv_relu_graph()
    g.set_input(g.nodes[-1], 0, other.nodes[0].output)
    g.outputs.append(other.outputs[0])
    with pytest.raises(VerificationError) as info:
        verify(g)
    assert "used before it is defined (or dangling)" in str(info.value)
    assert "graph output %relu is not defined" in str(info.value)


def test_verifier_reports_schema_violations():
    g = conv_relu_graph()
    g.nodes[0].attrs["groups"] = 2.5
    with pytest.raises(VerificationError, match="attribute 'groups' expects int"):
        verify(g)


def test_nodes_inserted_before_others_are_kept_in_dependency_order():
    g = conv_relu_graph()
    relu = g.nodes[-1]
    scale = g.add_constant("two", torch.tensor(2.0))
    mul = g.create_node("mul", [relu.output, scale], before=relu)  # depends on relu: sorted after it
    assert g.nodes.index(mul) > g.nodes.index(relu)
    neg = g.create_node("neg", [g.inputs[0]], before=g.nodes[0])
    assert g.nodes[0] is neg
    verify(g)


def test_replace_and_erase_keep_use_lists_consistent():
    g = conv_relu_graph()
    conv, relu = g.nodes
    g.replace_all_uses(relu.output, conv.output)
    g.erase_node(relu)
    assert g.outputs == [conv.output] and conv.output.users == []
    verify(g)
    with pytest.raises(ValueError, match="still used"):
        g.erase_node(conv)


def test_a_cycle_is_reported():
    g = conv_relu_graph()
    conv, relu = g.nodes
    g.set_input(conv, 0, relu.output)
    with pytest.raises(VerificationError, match="not acyclic"):
        verify(g)


def test_verifier_runs_each_ops_own_constraints():
    g = conv_relu_graph()
    clip = g.create_node("clip", [g.outputs[0]], {"min": 0.0, "max": 6.0}, name="clip")
    g.outputs = [clip.output]
    verify(g)
    clip.attrs["min"] = 7.0                          # shape inference is fine; the bounds are not
    with pytest.raises(VerificationError, match="node %clip .clip.: clip min 7.0 is above max 6.0"):
        verify(g)


def test_verifier_checks_use_lists_in_both_directions():
    g = conv_relu_graph()
    stray = g.nodes[-1]                              # relu, which reads %conv and nothing else
    g.weights["conv.weight"].users.append(stray)     # a use list naming a node that does not read it
    with pytest.raises(VerificationError, match=r"%conv.weight: use list names relu \(relu\)"):
        verify(g)


def test_verifier_checks_that_annotations_name_existing_values():
    from compiler.quant import QuantAnnotation
    g = conv_relu_graph()
    g.weights["conv.weight"].annotate(QuantAnnotation(format="int8", scale="conv.weight.scale", role="weight"))
    with pytest.raises(VerificationError, match=r"quant annotation names %conv.weight.scale"):
        verify(g)
    g.add_constant("conv.weight.scale", torch.tensor(0.1))
    verify(g)

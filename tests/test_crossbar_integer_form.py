"""The crossbar target on a graph in integer form (after `integerize`).

Its int_conv / int_linear layers go onto tiles, every other node (requantize, quantize,
dequantize, max pool, int32 adds) runs through the op registry, so with the ideal device and
converters that cover the partial sums the simulation IS the integer interpreter: every
accumulator and every output bit for bit, on the trained digits CNN, the zoo CNNs (both signed
encodings) and a BERT encoder. Noisy presets run on the same graph.
"""
from __future__ import annotations

import pytest
import torch

from backends.crossbar import CrossbarBackend
from compiler import compile
from compiler.errors import BackendError
from compiler.interpreter import interpret
from compiler.ir import Graph, TensorType
from compiler.ops import get_op
from tests.test_backend_crossbar import mixed_graph
from tests.test_quant_accuracy import BATCH, accuracy, digits_data, train_digits_cnn
from tests.zoo import build

UINT8 = "fold-bn,quantize{weights=int8,activations=uint8,residuals=true},integerize"
INT8 = "fold-bn,quantize{weights=int8,activations=int8},integerize"


def digits_integer_graph(pipeline: str) -> Graph:
    xtr, _, xte, _ = digits_data()
    return compile(train_digits_cnn(), (xte[:BATCH],), pipeline, calibration_data=xtr[:BATCH * 4]).graph


def accumulators_checked(graph: Graph, sim, *inputs: torch.Tensor) -> int:
    """Feeds every mapped layer the interpreter's own input and asserts its simulated int32
    accumulator equals the op's reference (a float layer left by integerize: to float rounding);
    returns how many integer layers were checked."""
    env = dict(zip(graph.inputs, inputs))
    checked = 0
    for node in graph.nodes:
        args = [None if v is None else v.data if v.data is not None else env[v] for v in node.inputs]
        results = get_op(node.op).run(args, node.attrs)
        if node in sim.mappings:
            layout = sim.mappings[node].layer.layout
            bias = layout.bias_value(node)
            got = sim.layer_output(node, args[layout.activations[0]], None if bias is None else bias.data)
            if sim.mappings[node].layer.accumulator:
                assert got.dtype == torch.int32 and torch.equal(got, results[0]), node.name
                checked += 1
            else:
                assert torch.allclose(got, results[0], rtol=1e-5, atol=1e-6), node.name
        env.update(zip(node.outputs, results))
    return checked


@pytest.mark.parametrize("pipeline", [UINT8, INT8], ids=["w8a8-uint8-residuals", "w8a8-int8"])
def test_ideal_crossbar_is_the_integer_interpreter_on_the_digits_cnn(pipeline, single_thread):
    graph = digits_integer_graph(pipeline)
    _, _, xte, yte = digits_data()
    artifact = CrossbarBackend(device="ideal", adc_bits=0).lower(graph, None)
    assert {n.op for n in artifact.runner.mappings} == {"int_conv", "int_linear"}
    assert accumulators_checked(graph, artifact.runner, xte[:BATCH]) == 4
    for i in range(0, len(xte), BATCH):
        batch = xte[i:i + BATCH]
        assert torch.equal(artifact.run(batch)[0], interpret(graph, batch)[0])
    print(f"\ndigits {pipeline}: ideal crossbar {accuracy(lambda b: artifact.run(b)[0], xte, yte):.2f}%")


@pytest.mark.parametrize("signed,adc_bits", [("differential", 0), ("offset", 16)])
@pytest.mark.parametrize("name,options", [("resnet18", {"width": 8}), ("mobilenetv2", {"width_mult": 0.25})])
def test_ideal_crossbar_is_the_integer_interpreter_on_zoo_cnns(name, options, signed, adc_bits):
    zoo = build(name, num_classes=10, batch=1, input_size=32, **options)
    x = zoo.example_inputs[0]
    result = compile(zoo.module, (x,), f"{UINT8}\ntarget crossbar{{device=ideal,adc-bits={adc_bits},signed={signed}}}")
    sim = result.artifact.runner
    assert len(sim.mappings) == sum(n.op in ("int_conv", "int_linear") for n in result.graph.nodes) >= 20
    assert torch.equal(result.artifact.run(x)[0], interpret(result.graph, x)[0])
    assert accumulators_checked(result.graph, sim, x) == len(sim.mappings)


def test_bert_linear_layers_go_onto_tiles_and_attention_stays_digital():
    zoo = build("bert", batch=1)
    result = compile(zoo.module, zoo.example_inputs,
                     "quantize{weights=int8,activations=int8},integerize\ntarget crossbar{device=ideal,adc-bits=0}")
    design = result.artifact.obj
    assert {m.layer.node.op for m in design.mappings} == {"int_linear"}
    assert {"int_matmul", "softmax", "requantize"} <= {d["op"] for d in design.digital}
    assert torch.equal(result.artifact.run(*zoo.example_inputs)[0], interpret(result.graph, *zoo.example_inputs)[0])
    assert accumulators_checked(result.graph, result.artifact.runner, *zoo.example_inputs) == len(design.mappings)


@pytest.mark.parametrize("activations", ["uint8", "int8"])
def test_every_integer_layer_kind_and_a_float_island(activations):
    """int_conv (dense and depthwise), int_linear and int_matmul with a constant matrix go onto
    tiles; the transposed conv integerize leaves in float is mapped from its dequantized input codes."""
    graph, x = mixed_graph(f"quantize{{weights=int8,activations={activations}}},integerize")
    artifact = CrossbarBackend(rows=32, cols=32, device="ideal", adc_bits=0).lower(graph, None)
    assert {n.op for n in artifact.runner.mappings} == {"int_conv", "int_linear", "int_matmul", "conv_transpose"}
    assert accumulators_checked(graph, artifact.runner, x) == 4
    expected = interpret(graph, x)[0]
    assert torch.allclose(artifact.run(x)[0], expected, atol=1e-6 * float(expected.abs().max()))


def test_the_integer_form_maps_onto_the_tiles_of_its_fake_quant_graph():
    zoo = build("resnet18", num_classes=10, batch=1, input_size=32, width=8)
    x = zoo.example_inputs[0]
    fake_quant = compile(zoo.module, (x,), UINT8.removesuffix(",integerize")).graph
    integer = compile(zoo.module, (x,), UINT8).graph
    backend = CrossbarBackend(device="ideal")
    a, b = backend.lower(fake_quant, None).obj, backend.lower(integer, None).obj
    assert len(a.mappings) == len(b.mappings)
    for fq, ints in zip(a.mappings, b.mappings):
        assert torch.equal(fq.layer.matrices, ints.layer.matrices), ints.name
        assert torch.allclose(fq.layer.out_scale, ints.layer.out_scale, rtol=1e-6)
        assert (fq.tiles, fq.cells, fq.slices) == (ints.tiles, ints.cells, ints.slices)
        assert fq.layer.inputs.zero_point == ints.layer.inputs.zero_point
    assert a.summary()["tiles"] == b.summary()["tiles"]


def test_the_digits_cnn_costs_the_same_in_both_forms(single_thread):
    """Same tiles and the same crossbar energy per layer; only the digital unit differs (one
    requantize per layer instead of a ReLU and a fake_quant). pytest -s prints the table."""
    backend = CrossbarBackend(rows=128, cols=128, device="pcm")
    fake_quant = backend.lower(digits_integer_graph(UINT8.removesuffix(",integerize")), None).obj
    integer = backend.lower(digits_integer_graph(UINT8), None).obj
    assert [m.tiles for m in integer.mappings] == [m.tiles for m in fake_quant.mappings] == [1, 4, 16, 1]
    crossbar_rows = [[r.energy for r in d.estimates if r.unit == "crossbar"] for d in (fake_quant, integer)]
    assert crossbar_rows[0] == crossbar_rows[1]
    print("\n" + integer.table())


@pytest.mark.parametrize("device", ["reram", "pcm"])
def test_noisy_presets_run_on_the_integer_graph(device, single_thread):
    graph = digits_integer_graph(UINT8)
    _, _, xte, yte = digits_data()
    noisy = CrossbarBackend(device=device, time=3600.0, drift_compensation=True, seed=1).lower(graph, None)
    out = noisy.run(xte[:BATCH])[0]
    exact = interpret(graph, xte[:BATCH])[0]
    assert out.dtype == exact.dtype and torch.isfinite(out).all() and not torch.equal(out, exact)
    got = accuracy(lambda b: noisy.run(b)[0], xte, yte)
    print(f"\ndigits integer form, {device} after 1 h (+gdc): {got:.2f}%")
    assert got > 85.0


def test_integer_inputs_wider_than_the_dacs_are_refused():
    graph = Graph("wide")
    x = graph.add_input("x", TensorType((2, 4), torch.int32))
    w = graph.add_constant("w", torch.ones(3, 4, dtype=torch.int8))
    graph.outputs = [graph.create_node("int_linear", [x, w], name="fc").output]
    with pytest.raises(BackendError, match="layer 'fc' \\(int_linear\\): its input %x holds int32 codes") as err:
        CrossbarBackend().lower(graph, None)
    assert "requantize" in err.value.hint

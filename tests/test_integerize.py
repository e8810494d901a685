"""integerize: the integer form of a quantized graph, checked against the fake-quant graph it came from.

* a chain with one requantization (conv/linear -> relu/relu6 -> max pool -> residual add ->
  quantizer) agrees with the fake-quant graph to at most one code on every element;
* the digits CNN keeps its accuracy (pytest -s prints the numbers);
* the zoo CNNs (ResNet, MobileNetV2) and BERT lower completely and stay close end to end;
* formats and graphs without an integer form are refused with the layer and a hint;
* the PyTorch backend and its standalone model.py reproduce the integers exactly.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from compiler import compile
from compiler.backend import get_backend
from compiler.errors import NNForgeError
from compiler.interpreter import interpret
from compiler.ir import Graph
from compiler.printer import print_graph
from compiler.ir_parser import parse_graph
from tests.test_backend_pytorch import _RUN_STANDALONE
from tests.test_quant_accuracy import BATCH, accuracy, digits_data, train_digits_cnn


def randomize_bn(model: nn.Module) -> nn.Module:
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
    return model.eval()


def quantized(model: nn.Module, x: torch.Tensor, pipeline: str = "fold-bn,quantize", calib=None) -> Graph:
    return compile(model, (x,), pipeline, calibration_data=calib if calib is not None else x).graph


def integerized(graph: Graph, options: str = "") -> Graph:
    copy = parse_graph(print_graph(graph), weights={k: v.data for k, v in graph.weights.items()})
    return compile(copy, pipeline=f"integerize{options}").graph


class Chain(nn.Module):
    """conv -> relu6 -> max pool, plus a conv shortcut, added, relu, then a quantized linear."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(3, 8, 1)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        y = nn.functional.max_pool2d(nn.functional.relu6(self.a(x)), 2)
        z = torch.relu(y + nn.functional.max_pool2d(self.b(x), 2))
        return z, self.fc(z.flatten(1))


def test_one_requantization_is_within_one_code_on_every_element():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 8, 8)
    fq_graph = quantized(Chain().eval(), x, "quantize{act-clip=minmax}")
    int_graph = integerized(fq_graph)
    fq_z, fq_out = interpret(fq_graph, x)
    int_z, int_out = interpret(int_graph, x)
    # z enters fc through its quantizer: compare codes there
    fq_node = next(n for n in fq_graph.nodes if n.op == "fake_quant" and n.inputs[0].name == "flatten")
    scale = float(fq_node.inputs[1].data)
    fq_codes = torch.round(interpret_value(fq_graph, fq_node.output, x) / scale)
    int_codes = next(interpret_value(int_graph, n.output, x) for n in int_graph.nodes
                     if n.op == "reshape" and n.output.dtype == torch.int8)
    diff = (fq_codes - int_codes.float()).abs()
    assert diff.max() <= 1 and float((diff > 0).float().mean()) < 0.01
    assert float((int_z - fq_z).abs().max()) < scale / 8  # the int32 residual path: a fraction of a code


def interpret_value(graph: Graph, value, *inputs):
    """One intermediate value of a graph run (the graph's outputs temporarily replaced)."""
    outputs = graph.outputs
    graph.outputs = [value]
    try:
        return interpret(graph, *inputs)[0]
    finally:
        graph.outputs = outputs


def test_integer_graph_is_integer_between_quantize_and_dequantize():
    x = torch.randn(8, 3, 8, 8)
    g = integerized(quantized(Chain().eval(), x))
    ops = [n.op for n in g.nodes]
    assert ops.count("quantize") == 1 and "conv" not in ops and "linear" not in ops and "fake_quant" not in ops
    for n in g.nodes:
        if n.op not in ("quantize", "dequantize"):
            assert all(v is None or not v.dtype.is_floating_point for v in n.inputs[:1] + n.outputs), n
    text = print_graph(g)
    assert "requantize(" in text and "@int<format='int8'" in text and "int_conv(" in text
    # the printed integer form parses back and runs identically
    again = parse_graph(text, weights={k: v.data for k, v in g.weights.items()})
    for a, b in zip(interpret(g, x), interpret(again, x)):
        assert torch.equal(a, b)


def test_sparsity_annotation_moves_to_the_weight_codes():
    """simd-sparsify's annotation survives integerize on the codes, whose zero groups are its mask."""
    from compiler.sparse.annotation import SparsityAnnotation
    x = torch.randn(8, 3, 8, 8)
    g = integerized(quantized(Chain().eval(), x, "simd-sparsify{simd=4,sparsity=0.5},fold-bn,quantize"))
    layers = [n for n in g.nodes if n.op in ("int_conv", "int_linear")]
    assert len(layers) == 3
    for n in layers:
        codes = n.inputs[1]
        note = codes.annotation(SparsityAnnotation)
        assert note is not None and note.pattern == "simd" and note.density == 0.5, codes.name
        nonzero = codes.data.reshape(codes.shape[0], -1).ne(0)
        groups = sum(int(nonzero[i:i + 4].any(0).sum()) for i in range(0, len(nonzero), 4))
        assert groups <= note.kept
    assert "@sparsity<pattern='simd'" in print_graph(g)


@pytest.mark.parametrize("formats", ["weights=int8,activations=int8", "weights=int4,activations=uint8"])
def test_digits_cnn_accuracy_is_unchanged(formats, single_thread):
    model = train_digits_cnn()
    xtr, _, xte, yte = digits_data()
    fq = quantized(model, xte[:BATCH], f"fold-bn,quantize{{{formats}}}", xtr[:BATCH * 4])
    ints = integerized(fq)
    fp32 = accuracy(model, xte, yte)
    acc_fq = accuracy(lambda b: interpret(fq, b)[0], xte, yte)
    acc_int = accuracy(lambda b: interpret(ints, b)[0], xte, yte)
    print(f"\ndigits CNN {formats}: FP32 {fp32:.2f}%, fake-quant {acc_fq:.2f}%, integer {acc_int:.2f}%")
    assert abs(acc_int - acc_fq) <= 0.3  # one image of 360


@pytest.mark.parametrize("build", ["resnet", "mobilenetv2"])
def test_zoo_cnns_lower_completely(build):
    from tests.zoo.mobilenetv2 import mobilenetv2
    from tests.zoo.resnet import resnet18
    model = randomize_bn(resnet18(num_classes=10, width=8) if build == "resnet"
                         else mobilenetv2(num_classes=10, width_mult=0.25))
    x = torch.rand(2, 3, 32, 32)
    fq = quantized(model, x)
    ints = integerized(fq)
    assert not [n.op for n in ints.nodes if n.op in ("conv", "linear", "fake_quant")]
    (ref,), (got,) = interpret(fq, x), interpret(ints, x)
    assert float((got - ref).norm() / ref.norm()) < 0.05


def test_bert_attention_and_softmax():
    from tests.zoo.bert import bert
    model = bert().eval()
    ids, mask = torch.randint(0, 1000, (1, 16)), torch.ones(1, 16, dtype=torch.int64)
    result = compile(model, (ids, mask), "quantize{weights=int8,activations=int8},integerize")
    ops = {n.op for n in result.graph.nodes}
    assert {"int_linear", "int_matmul", "softmax"} <= ops and "linear" not in ops
    stats = result.report.passes[-1].stats
    assert stats["layers.matmul"] >= 2 and stats.get("float.gelu", 0) >= 1


def test_fp4_is_refused_naming_layer_and_format():
    x = torch.randn(4, 3, 8, 8)
    fq = quantized(Chain().eval(), x, "quantize{weights=fp4-e2m1,activations=int8}")
    with pytest.raises(NNForgeError, match=r"'a'.*fp4-e2m1[\s\S]*fake-quant"):
        integerized(fq)
    ok = integerized(quantized(Chain().eval(), x, "quantize{overrides={a=int8}, weights=nvfp4}"), "{skip=[b, fc]}")
    assert {"int_conv", "conv", "linear"} <= {n.op for n in ok.nodes}


def test_unquantized_graph_is_an_error():
    with pytest.raises(NNForgeError, match="no quantized values"):
        compile(Chain().eval(), (torch.randn(1, 3, 8, 8),), "integerize")


def test_pytorch_backend_and_standalone_model_py_reproduce_the_integers(tmp_path):
    x = torch.randn(4, 3, 8, 8)
    g = integerized(quantized(Chain().eval(), x))
    artifact = get_backend("pytorch")().lower(g, tmp_path / "int")
    expected = interpret(g, x)
    assert all(torch.equal(a, b) for a, b in zip(artifact.run(x), expected))
    torch.save([x], tmp_path / "inputs.pt")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run([sys.executable, "-I", "-c", _RUN_STANDALONE, str(tmp_path / "inputs.pt"),
                           str(tmp_path / "outputs.pt")], cwd=tmp_path / "int", env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert all(torch.equal(a, b) for a, b in zip(torch.load(tmp_path / "outputs.pt"), expected))


class Branches(nn.Module):
    """Two convolutions concatenated along channels, a SiLU island, then a conv."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 1), nn.Conv2d(8, 5, 1)

    def forward(self, x):
        y = torch.cat([torch.relu(self.a(x)), self.b(x)], dim=1)
        return self.c(nn.functional.silu(y) + y)


def test_concat_in_int32_and_silu_as_a_float_island():
    x = torch.randn(4, 3, 8, 8)
    fq = quantized(Branches().eval(), x, "quantize{residuals=true}")
    ints = integerized(fq)
    ops = [n.op for n in ints.nodes]
    assert "concat" in ops and "silu" in ops and ops.count("int_conv") == 3
    concat = next(n for n in ints.nodes if n.op == "concat")
    assert concat.output.dtype == torch.int32
    silu = next(n for n in ints.nodes if n.op == "silu")
    assert silu.inputs[0].producer.op == "dequantize"
    (ref,), (got,) = interpret(fq, x), interpret(ints, x)
    assert float((got - ref).norm() / ref.norm()) < 0.02


def test_weights_only_and_already_integer_graphs_are_errors():
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(NNForgeError, match="no layer with quantized activations and weights"):
        integerized(quantized(Chain().eval(), x, "quantize{activations=none}"))
    with pytest.raises(NNForgeError, match="already in integer form"):
        integerized(integerized(quantized(Chain().eval(), x)))

"""Already-quantized ONNX models (onnxruntime.quantization's QDQ, QOperator and dynamic forms)
import into fake_quant nodes with QuantAnnotations, compute what onnxruntime computes on the
original file, and can be compiled again (re-targeted) like any quantized graph."""
from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest
import torch

from compiler import compile
from compiler.backend import get_backend
from compiler.interpreter import interpret
from compiler.quant import QuantAnnotation
from frontends.onnx import import_onnx
from tests.onnx_models import ort_run
from tests.onnx_models.prequantized import KINDS, batches, quantized

pytestmark = pytest.mark.usefixtures("single_thread")
RTOL, ATOL = 1e-4, 1e-5
ORIGINAL_OPS = {"qdq": {"QuantizeLinear", "DequantizeLinear"}, "qoperator": {"QLinearConv", "QLinearMatMul"},
                "dynamic": {"DynamicQuantizeLinear", "ConvInteger", "MatMulInteger"}}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    logging.getLogger("root").setLevel(logging.ERROR)   # onnxruntime.quantization logs its preprocessing advice
    folder = tmp_path_factory.mktemp("prequantized")
    return {kind: quantized(kind, folder) for kind in KINDS}


def layer_operands(graph):
    """(weight annotation, input annotation or None) of every conv and matmul."""
    out = []
    for node in graph.nodes:
        if node.op in ("conv", "matmul"):
            w, x = node.inputs[1], node.inputs[0]
            out.append((w.annotation(QuantAnnotation), x.annotation(QuantAnnotation)))
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_prequantized_model_round_trips_against_onnxruntime(models, kind):
    path = models[kind]
    assert ORIGINAL_OPS[kind] <= {n.op_type for n in onnx.load(path).graph.node}
    graph = import_onnx(path)
    for x in batches(3, seed=5):
        want = torch.from_numpy(ort_run(path, {"x": x})[0])
        scale = float(want.abs().max())
        got = {"IR": interpret(graph, torch.from_numpy(x))[0]}
        for target, options in (("onnx", {"quant": "plain"}), ("pytorch", {})):  # plain: the graph as imported
            got[target] = get_backend(target)(**options).lower(graph, None).run(torch.from_numpy(x))[0]
        for name, y in got.items():
            torch.testing.assert_close(y, want, rtol=RTOL, atol=ATOL * scale, msg=f"{kind} via {name}")


@pytest.mark.parametrize("kind", KINDS)
def test_weights_and_activations_carry_quantization_annotations(models, kind):
    graph = import_onnx(models[kind])
    operands = layer_operands(graph)
    assert len(operands) == 3
    for weight, act in operands:
        assert weight is not None and weight.role == "weight" and weight.format == "int8"
        assert act is not None and act.role == "activation" and act.format.startswith(("uint8", "int8"))
    if kind == "qdq":  # per-channel weights: conv output channels, matmul columns
        assert [w.axis for w, _ in operands] == [0, 0, 1]


@pytest.mark.parametrize("kind", ["qdq", "qoperator"])
def test_a_prequantized_model_compiles_again_without_requantizing(models, kind, tmp_path):
    calib = np.concatenate(batches(4, seed=9))
    result = compile(models[kind], pipeline="quantize", calibration_data=calib, target="onnx{quant=plain}",
                     output=tmp_path / "again.onnx")
    stats = result.report.passes[0].stats
    assert stats["layers"] == 3 and not any(k.startswith(("weights.", "activations.")) for k in stats)
    x = batches(1, seed=11)[0]
    want = ort_run(models[kind], {"x": x})[0]
    got = ort_run(tmp_path / "again.onnx", {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL * np.abs(want).max())

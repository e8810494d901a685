"""QONNX export (`target qonnx`): loaded by the qonnx package and run by its own executor, every
Quant/FloatQuant output equals nnforge's fake_quant value and the model outputs match."""
from __future__ import annotations

import pytest
import torch

from compiler import compile
from compiler.interpreter import interpret
from tests.test_integerize import Chain, interpret_value

qonnx = pytest.importorskip("qonnx", reason="qonnx is not installed (dev extra)")

FORMATS = [("int8", "int8"), ("int4", "uint8"), ("int3-narrow", "uint4"), ("fp4-e2m1", "fp8-e4m3"),
           ("fp4-e3m0", "fp4-e1m2"), ("mxfp4", "int8"), ("nvfp4", "fp8-e5m2")]


@pytest.mark.parametrize("weights, activations", FORMATS, ids=lambda f: f)
def test_qonnx_executor_reproduces_nnforge(weights, activations, tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "model.onnx"
    result = compile(Chain().eval(), (x,), f"quantize{{weights={weights},activations={activations}}}",
                     target="qonnx", output=path, calibration_data=x)
    info = result.artifact.info
    assert info.get("qonnx.Quant", 0) + info.get("qonnx.FloatQuant", 0) == 5
    model = ModelWrapper(str(path)).transform(InferShapes())
    context = execute_onnx(model, {"x": x.numpy()}, return_full_exec_context=True)
    for node in result.graph.nodes:
        if node.op == "fake_quant":
            assert torch.equal(torch.from_numpy(context[node.output.name]), interpret_value(result.graph, node.output, x))
    for value, ours in zip(result.graph.outputs, interpret(result.graph, x)):
        torch.testing.assert_close(torch.from_numpy(context[value.name]), ours, rtol=1e-5, atol=1e-6)
    for got, ours in zip(result.artifact.run(x), interpret(result.graph, x)):  # the artifact's runner
        torch.testing.assert_close(got, ours, rtol=1e-5, atol=1e-6)

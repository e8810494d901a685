"""The `fake_quant` op: PyTorch backend bit-exact (also as standalone model.py), ONNX QDQ checked in
onnxruntime (the shared catalogue) and in onnx.reference for FP4/MXFP4/NVFP4, clear errors."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import torch
from onnx.reference import ReferenceEvaluator

from backends.onnx import build_model
from compiler.backend import get_backend
from compiler.errors import BackendError, IRError
from compiler.interpreter import interpret
from compiler.ir import Graph, TensorType
from tests.op_cases import OpCase, W, randn  # noqa: F401  (import before op_cases_quant)
from tests.op_cases_quant import QUANT_CASES, REFERENCE_CASES, TORCH_ONLY_CASES, _case
from tests.test_backend_pytorch import _RUN_STANDALONE


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("case", REFERENCE_CASES + TORCH_ONLY_CASES, ids=lambda c: c.id)
def test_pytorch_backend_is_bit_exact(case: OpCase):
    graph, feeds = case.build()
    got = get_backend("pytorch")().lower(graph, None).run(*feeds)[0]
    assert torch.equal(got, interpret(graph, *feeds)[0])


def _reference_run(graph: Graph, feeds, opset: int) -> torch.Tensor:
    model, _ = build_model(graph, opset)
    onnx.checker.check_model(model, full_check=True)
    feed = {v.name: t.numpy() for v, t in zip(graph.inputs, feeds)}
    return torch.from_numpy(ReferenceEvaluator(model).run(None, feed)[0])


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=lambda c: c.id)
def test_fp4_formats_match_in_the_onnx_reference_evaluator(case: OpCase):
    graph, feeds = case.build()
    assert torch.equal(_reference_run(graph, feeds, 23), interpret(graph, *feeds)[0])


@pytest.mark.parametrize("case", [c for c in QUANT_CASES if c.min_opset >= 19], ids=lambda c: c.id)
def test_int4_and_fp8_match_in_the_onnx_reference_evaluator(case: OpCase):
    graph, feeds = case.build()
    assert torch.equal(_reference_run(graph, feeds, 23), interpret(graph, *feeds)[0])


def test_mxfp4_scales_are_e8m0_codes_at_opset_24():
    case = next(c for c in REFERENCE_CASES if c.id.endswith("mxfp4_weight"))
    graph, feeds = case.build()
    model, _ = build_model(graph, 24)
    types = {t.name.split("/")[-1].rsplit("_", 1)[0]: t.data_type for t in model.graph.initializer}
    assert types["scale_e8m0"] == onnx.TensorProto.FLOAT8E8M0 and types["codes"] == onnx.TensorProto.FLOAT4E2M1
    assert torch.equal(_reference_run(graph, feeds, 24), interpret(graph, *feeds)[0])
    model23, _ = build_model(graph, 23)  # before 24: the same powers of two as FLOAT scales
    assert onnx.TensorProto.FLOAT8E8M0 not in {t.data_type for t in model23.graph.initializer}


def test_nvfp4_is_two_dequantize_nodes():
    case = next(c for c in REFERENCE_CASES if c.id.endswith("nvfp4_weight"))
    model, _ = build_model(case.build()[0], 23)
    assert [n.op_type for n in model.graph.node] == ["DequantizeLinear", "DequantizeLinear"]
    assert {t.data_type for t in model.graph.initializer} >= {onnx.TensorProto.FLOAT8E4M3FN,
                                                              onnx.TensorProto.FLOAT4E2M1}


def test_weights_are_stored_as_codes_and_activations_get_a_qdq_pair():
    weight = next(c for c in QUANT_CASES if c.id.endswith("int4_channel_weight"))
    model, _ = build_model(weight.build()[0], 21)
    assert [n.op_type for n in model.graph.node] == ["DequantizeLinear"]
    codes = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT4]
    assert len(codes) == 1 and list(codes[0].dims) == [6, 4, 3, 3]
    act = next(c for c in QUANT_CASES if c.id.endswith("int8_tensor_activation"))
    assert [n.op_type for n in build_model(act.build()[0], 17)[0].graph.node] == ["QuantizeLinear", "DequantizeLinear"]


@pytest.mark.parametrize("case, opset, message", [
    (TORCH_ONLY_CASES[0], 23, "fp4-e3m0 has no ONNX tensor type"),
    (TORCH_ONLY_CASES[3], 23, "int2 needs opset 25"),
    (REFERENCE_CASES[0], 22, "fp4-e2m1 needs opset 23"),
    (QUANT_CASES[7], 20, "int4 needs opset 21"),
    (QUANT_CASES[11], 20, "int8 with blocked scales needs opset 21"),
], ids=["e3m0", "int2", "fp4_opset22", "int4_opset20", "blocked_opset20"])
def test_unexportable_formats_raise_backend_error_naming_node_and_format(case, opset, message):
    graph, _ = case.build()
    with pytest.raises(BackendError) as info:
        build_model(graph, opset)
    assert message in str(info.value) and "%fake_quant (fake_quant)" in str(info.value)


def test_model_py_carries_the_kernels_and_runs_standalone(tmp_path: Path):
    g = Graph("quantized")
    x = g.add_input("x", TensorType((2, 8), torch.float32))
    case = _case("fp4-e2m1", W(randn(8, 8)), axis=0)
    w = g.create_node("fake_quant", [g.add_weight("w", case.inputs[0].tensor),
                                     g.add_constant("s", case.inputs[1].tensor)], case.attrs, name="wq").output
    h = g.create_node("linear", [x, w], name="fc").output
    s = g.add_constant("hs", torch.tensor(0.05))
    g.outputs = [g.create_node("fake_quant", [h, s], {"format": "int8"}, name="hq").output]
    feeds = [randn(2, 8)]
    out_dir = tmp_path / "m"
    get_backend("pytorch")().lower(g, out_dir)
    source = (out_dir / "model.py").read_text()
    assert "def quantize_float(" in source and "compiler_quant_kernels_quantize_int = quantize_int" in source
    torch.save(feeds, tmp_path / "inputs.pt")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run([sys.executable, "-I", "-c", _RUN_STANDALONE, str(tmp_path / "inputs.pt"),
                           str(tmp_path / "outputs.pt")], cwd=out_dir, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert torch.equal(torch.load(tmp_path / "outputs.pt")[0], interpret(g, *feeds)[0])


@pytest.mark.parametrize("scale_shape, attrs, message", [
    ((3,), {"format": "int8"}, "scale must have shape []"),
    ((), {"format": "int8", "axis": 1}, "scale must have shape [4]"),
    ((2, 1), {"format": "int4", "axis": 1, "block_size": 3}, "scale must have shape [2, 2]"),
    ((2, 1), {"format": "mxfp4", "axis": 1, "block_size": 16}, "mxfp4 needs blocks of 32"),
    ((), {"format": "int9"}, "integer widths are 2..8 bits"),
    ((), {"format": "int8", "axis": 2}, "axis 2 is out of range"),
])
def test_fake_quant_rejects_bad_scales_and_formats(scale_shape, attrs, message):
    g = Graph("bad")
    x = g.add_input("x", TensorType((2, 4), torch.float32))
    s = g.add_constant("s", torch.ones(scale_shape))
    with pytest.raises(IRError) as info:
        g.create_node("fake_quant", [x, s], attrs)
    assert message in str(info.value)

"""`--check-equivalence` and graphs at the edges: no outputs, invalid attributes, bfloat16, NaN."""
from __future__ import annotations

import json
import math

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from compiler.api import compile
from compiler.backend import get_backend
from compiler.cli import main
from compiler.errors import BackendError
from compiler.ir import Graph, TensorType
from compiler.manager import max_difference


def onnx_file(tmp_path, nodes, inputs, outputs, inits=(), name="m.onnx"):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / name)
    return tmp_path / name


def info(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_a_graph_without_outputs_is_an_error_not_an_unloadable_file(tmp_path, capsys):
    path = onnx_file(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [info("x", TensorProto.FLOAT, [1, 4])], [])
    code, err = cli(capsys, "compile", path, "-o", tmp_path / "out.onnx", "--check-equivalence")
    assert code == 2 and "graph 'm' has no outputs" in err
    assert not (tmp_path / "out.onnx").exists()
    g = Graph("empty")
    g.add_input("x", TensorType((2,), torch.float32))
    with pytest.raises(BackendError, match="has no outputs"):
        get_backend("onnx")().lower(g, None)


@pytest.mark.parametrize("node, message", [
    (helper.make_node("LayerNormalization", ["x", "s"], ["y"], epsilon=-1.0), "attribute 'eps' must be >= 0.0"),
    (helper.make_node("LayerNormalization", ["x", "s"], ["y"], epsilon=math.nan), "attribute 'eps' must be >= 0.0"),
    (helper.make_node("MaxPool", ["x4"], ["y"], kernel_shape=[2, 2], strides=[2**31, 2**31]),
     "attribute 'stride' must be in [1, 2147483647]"),
    (helper.make_node("Conv", ["x4", "w"], ["y"], dilations=[2**31, 1]), "attribute 'dilation' must be in"),
])
def test_attributes_torch_cannot_run_are_refused_on_import(tmp_path, capsys, node, message):
    inputs = [info("x4", TensorProto.FLOAT, [1, 1, 4, 4]) if "x4" in node.input else info("x", TensorProto.FLOAT, [1, 4])]
    inits = [helper.make_tensor("s", TensorProto.FLOAT, [4], [1.0] * 4),
             helper.make_tensor("w", TensorProto.FLOAT, [1, 1, 1, 1], [1.0])]
    path = onnx_file(tmp_path, [node], inputs, [info("y", TensorProto.FLOAT, None)], inits)
    code, err = cli(capsys, "compile", path, "--target", "onnx", "--check-equivalence")
    assert code == 2 and message in err and "Traceback" not in err


def bf16_model(tmp_path, op):
    return onnx_file(tmp_path, [helper.make_node(op, ["x"], ["y"])], [info("x", TensorProto.BFLOAT16, [2, 4])],
                     [info("y", TensorProto.BFLOAT16, [2, 4])], name=f"{op}.onnx")


def test_bfloat16_inputs_run_through_onnxruntime(tmp_path):
    result = compile(bf16_model(tmp_path, "Identity"), target=["onnx", "pytorch"], check_equivalence=True)
    assert [row["max_abs_diff"] for row in result.report.artifacts] == [0.0, 0.0]
    x = torch.randn(2, 4).to(torch.bfloat16)
    assert torch.equal(result.artifacts[0].run(x)[0], x)


def test_a_bfloat16_op_onnxruntime_lacks_runs_in_the_reference_evaluator(tmp_path, capsys):
    code, err = cli(capsys, "compile", bf16_model(tmp_path, "Relu"), "--target", "onnx", "--check-equivalence",
                    "--report", str(tmp_path / "r.json"))
    assert code == 0 and "Traceback" not in err and "[E:onnxruntime" not in err
    row = json.loads((tmp_path / "r.json").read_text())["artifacts"][0]
    assert row["runtime"].startswith("onnx.reference") and row["max_abs_diff"] == 0.0


def test_nan_differences_are_not_hidden():
    nan = float("nan")
    assert max_difference([torch.tensor([1.0, nan])], [torch.tensor([1.0, nan])]) == (0.0, 0.0)
    assert max_difference([torch.tensor([1.0, 2.0])], [torch.tensor([1.0, nan])]) == (math.inf, math.inf)
    assert max_difference([torch.tensor([math.inf])], [torch.tensor([math.inf])]) == (0.0, 0.0)
    assert max_difference([torch.tensor([math.inf, 1.0])], [torch.tensor([1.0, 1.0])])[0] == math.inf

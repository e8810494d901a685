"""Tiny files cannot make nnforge allocate what they only declare: example inputs are built only
when a pass or check needs them, every allocation from declared sizes is bounded first (a limit
the user can raise), and data files are refused by their headers."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from compiler import api, memory
from compiler.api import compile
from compiler.array_files import load_arrays
from compiler.cli import main
from compiler.errors import UserInputError
from compiler.ir import Graph, TensorType


def onnx_model(path, nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def huge_input_model(tmp_path):
    """59 bytes declaring a 4 GB input."""
    dim = [10**9]
    return onnx_model(tmp_path / "huge.onnx", [helper.make_node("Relu", ["x"], ["y"])],
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, dim)],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, dim)])


def test_a_plain_compile_builds_no_example_inputs(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("example inputs were built")
    monkeypatch.setattr(api, "random_inputs", refuse)
    result = compile(huge_input_model(tmp_path), pipeline="fold-constants,dce", target="onnx",
                     output=tmp_path / "out.onnx")
    assert result.graph.inputs[0].shape == (10**9,)


def test_a_declared_input_too_big_to_check_is_refused_before_allocating(tmp_path):
    with pytest.raises(UserInputError, match=r"random example inputs would need 3.73 GiB.*limit of 1 GiB"):
        with memory.memory_limit("1GiB"):
            compile(huge_input_model(tmp_path), target="onnx", check_equivalence=True)


def test_a_huge_constant_of_shape_is_refused_under_check_equivalence(tmp_path, capsys):
    shape = helper.make_tensor("shape", TensorProto.INT64, [1], [2**32 - 1])
    path = onnx_model(tmp_path / "cos.onnx",
                      [helper.make_node("ConstantOfShape", ["shape"], ["c"]),
                       helper.make_node("Add", ["x", "c"], ["y"])],
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [shape])
    code = main(["compile", str(path), "--target", "onnx", "--check-equivalence"])
    err = capsys.readouterr().err
    assert code == 2 and "running the graph (peak at %y (add)) would need 32 GiB" in err and "--max-memory" in err


def test_the_limit_can_be_raised_and_lowered():
    g = Graph("g")
    x = g.add_input("x", TensorType((256, 256), torch.float32))  # 256 KiB
    g.outputs = [g.create_node("relu", [x]).output]
    with memory.memory_limit(1024):
        with pytest.raises(UserInputError, match="over the memory limit of 1 KiB"):
            compile(g, target="onnx", check_equivalence=True)
    with memory.memory_limit("1MiB"):
        assert compile(g, target="onnx", check_equivalence=True).report.artifacts[0]["max_abs_diff"] == 0


def test_the_cli_and_the_environment_set_the_limit(capsys, monkeypatch):
    demo = "examples/demo_model.py:build"
    assert main(["compile", demo, "--check-equivalence", "--max-memory", "1KiB"]) == 2
    assert "over the memory limit of 1 KiB" in capsys.readouterr().err
    monkeypatch.setenv(memory.ENV_VAR, "2KiB")
    assert memory.limit() == 2048
    assert main(["compile", demo, "--max-memory", "lots"]) == 2
    assert "bad memory size 'lots'" in capsys.readouterr().err


def test_peak_counts_only_values_alive_at_once():
    g = Graph("chain")
    value = g.add_input("x", TensorType((1024,), torch.float32))  # 4 KiB each
    for _ in range(10):
        value = g.create_node("relu", [value]).output
    g.outputs = [value]
    peak, _ = memory.peak_bytes(g)
    assert peak == 3 * 4096  # the input (kept: it is the caller's), one live value and the next


# ---- data files refused by their headers ------------------------------------------------------
def npy_header(path, shape, descr="<f4", payload=b"\0" * 64):
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
        f.write(payload)
    return path


def test_an_npy_header_claiming_terabytes_is_refused_without_reading(tmp_path):
    path = npy_header(tmp_path / "claims.npy", (1_000_000_000_000,))
    with pytest.raises(UserInputError, match=r"declares 3.64 TiB of shape \[1000000000000\], but holds only 64 B"):
        load_arrays(path)


def test_a_compressed_npz_that_would_expand_past_the_limit_is_refused(tmp_path):
    np.savez_compressed(tmp_path / "bomb.npz", a=np.zeros((64, 1024, 1024), np.float32))  # 256 MiB, ~250 KB
    assert (tmp_path / "bomb.npz").stat().st_size < 2**20
    with memory.memory_limit("64MiB"):
        with pytest.raises(UserInputError, match=r"reading '.*bomb.npz' would need 256 MiB"):
            load_arrays(tmp_path / "bomb.npz")
    with memory.memory_limit("1GiB"):
        assert load_arrays(tmp_path / "bomb.npz")["a"].shape == (64, 1024, 1024)

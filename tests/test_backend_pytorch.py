"""The PyTorch backend: IR -> torch.fx GraphModule (+ model.py and weights.safetensors).

The shared op catalogue (tests/op_cases.py) runs through it op by op. Here the contract is bit-exactness: the GraphModule makes the same torch calls, in the same
order, as the IR interpreter.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from compiler.backend import get_backend
from compiler.errors import BackendError
from compiler.interpreter import interpret
from compiler.ir import Graph, TensorType
from compiler.ops import all_ops
from tests.op_cases import OP_CASES, OpCase, conv_attrs, positive, randn

def test_op_cases_cover_every_registered_op():
    assert {case.op for case in OP_CASES} == set(all_ops())


def test_op_case_ids_are_unique():
    ids = [case.id for case in OP_CASES]
    assert len(ids) == len(set(ids))


# ---- bit-exactness -------------------------------------------------------------------------
@pytest.mark.parametrize("case", OP_CASES, ids=lambda c: c.id)
def test_op_matches_interpreter_exactly(case: OpCase):
    graph, feeds = case.build()
    artifact = get_backend("pytorch")().lower(graph, None)
    expected = interpret(graph, *feeds)
    got = artifact.run(*feeds)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and torch.equal(g, e)


def small_cnn() -> tuple[Graph, list[torch.Tensor]]:
    """conv-bn-relu, a residual add, pooling, a linear head and a second (split) output."""
    g = Graph("small_cnn")
    x = g.add_input("x", TensorType((2, 3, 8, 8), torch.float32))
    conv = g.create_node("conv", [x, g.add_weight("stem.conv.weight", randn(8, 3, 3, 3))],
                         conv_attrs(padding=(1, 1)), name="stem.conv")
    bn = g.create_node("batch_norm", [conv.output, g.add_constant("stem.bn.running_mean", randn(8)),
                                      g.add_constant("stem.bn.running_var", positive(8)),
                                      g.add_weight("stem.bn.weight", randn(8)),
                                      g.add_weight("stem.bn.bias", randn(8))], name="stem.bn")
    relu = g.create_node("relu", [bn.output], name="stem.relu")
    res = g.create_node("add", [relu.output, conv.output], name="residual")
    pool = g.create_node("adaptive_avg_pool", [res.output], {"output_size": (1, 1)}, name="pool")
    flat = g.create_node("reshape", [pool.output], {"shape": (2, 8)}, name="flatten")
    fc = g.create_node("linear", [flat.output, g.add_weight("fc.weight", randn(4, 8)),
                                  g.add_weight("fc.bias", randn(4))], name="fc")
    halves = g.create_node("split", [res.output], {"sizes": (4, 4), "dim": 1}, name="halves")
    g.outputs = [fc.output, halves.outputs[1]]
    return g, [randn(2, 3, 8, 8)]


def test_graph_module_structure_and_weight_names():
    graph, feeds = small_cnn()
    artifact = get_backend("pytorch")().lower(graph, None)
    gm = artifact.obj
    assert isinstance(gm, torch.fx.GraphModule)
    params = dict(gm.named_parameters())
    buffers = dict(gm.named_buffers())
    assert {"stem_conv_weight", "stem_bn_weight", "fc_weight", "fc_bias"} <= set(params)
    assert {"stem_bn_running_mean", "stem_bn_running_var"} <= set(buffers)
    assert all(not p.requires_grad for p in params.values())
    # weights are shared with the IR, not copied
    assert params["fc_weight"].data_ptr() == graph.weights["fc.weight"].data.data_ptr()
    assert "torch.conv2d(x, stem_conv_weight" in gm.code
    for got, expected in zip(artifact.run(*feeds), interpret(graph, *feeds)):
        assert torch.equal(got, expected)


def test_names_that_clash_with_python_or_nn_module_are_renamed():
    g = Graph("clash")
    x = g.add_input("input", TensorType((3,), torch.float32))
    w = g.add_constant("training", randn(3))
    w2 = g.add_weight("0.forward", randn(3))
    out = g.create_node("add", [g.create_node("mul", [x, w], name="lambda").output, w2], name="sum")
    g.outputs = [out.output]
    gm = get_backend("pytorch")().lower(g, None).obj
    assert {"training_", "v_0_forward"} <= {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    assert gm.training is False
    feeds = [randn(3)]
    assert torch.equal(gm(*feeds), interpret(g, *feeds)[0])  # one output: a plain tensor


def passthrough_graph() -> Graph:
    """Outputs that are an input, a weight, and one node result twice."""
    g = Graph("passthrough")
    x = g.add_input("x", TensorType((2,), torch.float32))
    w = g.add_weight("w", randn(2))
    y = g.create_node("neg", [x]).output
    g.outputs = [y, x, w, y]
    return g


def test_outputs_may_be_inputs_weights_or_repeated():
    g = passthrough_graph()
    artifact = get_backend("pytorch")().lower(g, None)
    feeds = [randn(2)]
    got = artifact.run(*feeds)
    assert [torch.equal(a, b) for a, b in zip(got, interpret(g, *feeds))] == [True] * 4


# ---- model.py + weights.safetensors ---------------------------------------------------------
_RUN_STANDALONE = textwrap.dedent("""
    import importlib.abc, importlib.util, sys

    class NoNnforge(importlib.abc.MetaPathFinder):  # nnforge may be installed: hide it
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("compiler", "frontends", "passes", "backends"):
                raise ImportError(f"model.py imported nnforge's {name}")

    sys.meta_path.insert(0, NoNnforge())
    import torch
    spec = importlib.util.spec_from_file_location("model", "model.py")
    model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model)
    net = model.load()
    inputs = torch.load(sys.argv[1])
    with torch.no_grad():
        outputs = net(*inputs)
    torch.save(list(outputs) if isinstance(outputs, tuple) else [outputs], sys.argv[2])
""")


def test_model_py_runs_standalone_in_a_fresh_process(tmp_path: Path):
    graph, feeds = small_cnn()
    out_dir = tmp_path / "small_cnn"
    artifact = get_backend("pytorch")().lower(graph, out_dir)
    assert sorted(p.name for p in out_dir.iterdir()) == ["model.py", "weights.safetensors"]
    assert artifact.files == [out_dir / "model.py", out_dir / "weights.safetensors"]
    source = (out_dir / "model.py").read_text()
    assert "class SmallCnn(torch.nn.Module)" in source and "def load(" in source
    assert "nnforge" not in source.split('"""', 2)[2]  # only the docstring mentions it

    torch.save(feeds, tmp_path / "inputs.pt")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run([sys.executable, "-I", "-c", _RUN_STANDALONE, str(tmp_path / "inputs.pt"),
                           str(tmp_path / "outputs.pt")], cwd=out_dir, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    outputs = torch.load(tmp_path / "outputs.pt")
    for got, expected in zip(outputs, interpret(graph, *feeds), strict=True):
        assert torch.equal(got, expected)


def test_shared_and_strided_weights_are_saved(tmp_path: Path):
    """safetensors rejects views sharing storage; the backend copies only those."""
    base = randn(4, 6)
    g = Graph("shared")
    x = g.add_input("x", TensorType((2, 6), torch.float32))
    y = g.create_node("linear", [x, g.add_weight("a", base)]).output          # [2, 4]
    z = g.create_node("matmul", [y, g.add_weight("b", base[:, :3])]).output   # a view of a
    w = g.create_node("matmul", [x, g.add_weight("c", base.t())]).output      # a transposed view
    g.outputs = [z, w]
    get_backend("pytorch")().lower(g, tmp_path / "out")
    from safetensors.torch import load_file
    saved = load_file(str(tmp_path / "out" / "weights.safetensors"))
    assert torch.equal(saved["a"], base) and torch.equal(saved["b"], base[:, :3])
    assert torch.equal(saved["c"], base.t())
    assert saved["a"].data_ptr() != saved["b"].data_ptr()


def test_failed_lowering_leaves_existing_output_untouched(tmp_path: Path, monkeypatch):
    graph, _ = small_cnn()
    out_dir = tmp_path / "model"
    get_backend("pytorch")().lower(graph, out_dir)
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}

    import backends.pytorch as pytorch_backend

    def broken(*args, **kwargs):
        raise BackendError("disk full (simulated)")
    monkeypatch.setattr(pytorch_backend, "render_model_py", broken)
    with pytest.raises(BackendError):
        get_backend("pytorch")().lower(graph, out_dir)
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary left behind


def test_in_memory_lowering_writes_nothing(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    graph, _ = small_cnn()
    artifact = get_backend("pytorch")().lower(graph, None)
    assert artifact.files == [] and list(tmp_path.iterdir()) == []

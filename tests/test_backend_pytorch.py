"""The PyTorch backend: IR -> torch.fx GraphModule (+ model.py and weights.safetensors).

The op cases below (`OP_CASES`) are the shared catalogue of one-node graphs, one or more per
registered op with representative attributes; the ONNX backend tests run the same catalogue.
Here the contract is bit-exactness: the GraphModule makes the same torch calls, in the same
order, as the IR interpreter.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from compiler.backend import get_backend
from compiler.errors import BackendError
from compiler.interpreter import interpret
from compiler.ir import Graph, TensorType
from compiler.ops import all_ops, get_op

_gen = torch.Generator().manual_seed(0)


def randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(shape, generator=_gen) * scale


def positive(*shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=_gen) + 0.1


def ints(*shape: int, low: int = 0, high: int = 10, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    return torch.randint(low, high, shape, generator=_gen, dtype=dtype)


@dataclass(frozen=True)
class W:
    """Marks an op input as a weight (initializer) instead of a graph input."""

    tensor: torch.Tensor


@dataclass
class OpCase:
    """One node of `op` applied to `inputs` (tensors -> graph inputs, W -> weights, None -> absent)."""

    op: str
    inputs: tuple
    attrs: dict = field(default_factory=dict)
    label: str = ""
    min_opset: int = 0

    @property
    def id(self) -> str:
        return f"{self.op}-{self.label}" if self.label else self.op

    def build(self) -> tuple[Graph, list[torch.Tensor]]:
        """A graph with this one node; returns it with the example inputs."""
        graph = Graph(self.id.replace("-", "_"))
        names = [n.strip("*?") for n in get_op(self.op).inputs]
        values, feeds = [], []
        for i, item in enumerate(self.inputs):
            name = names[min(i, len(names) - 1)] + (str(i) if get_op(self.op).variadic else "")
            if item is None:
                values.append(None)
            elif isinstance(item, W):
                values.append(graph.add_weight(f"{self.op}.{name}", item.tensor))
            else:
                values.append(graph.add_input(name, TensorType.of(item)))
                feeds.append(item)
        node = graph.create_node(self.op, values, self.attrs, name=self.op)
        graph.outputs = list(node.outputs)
        return graph, feeds


def conv_attrs(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1) -> dict:
    return dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def pool_attrs(kernel, stride, padding, **extra) -> dict:
    return dict(kernel=kernel, stride=stride, padding=padding, **extra)


_DIV_A = torch.cat([randn(16, scale=5.0), torch.tensor([1.0, -1.0, 7.0, -7.0, 0.0, 3.0, -0.0, 5.0])])
_DIV_B = torch.cat([randn(16), torch.tensor([0.1, 0.1, -2.0, 2.0, 3.0, 0.0, -4.0, -0.5])])

OP_CASES: list[OpCase] = [
    # ---- nn
    OpCase("conv", (randn(2, 4, 9, 9), W(randn(6, 4, 3, 3)), W(randn(6))), conv_attrs(padding=(1, 1)), "bias"),
    OpCase("conv", (randn(1, 4, 9, 9), W(randn(8, 2, 3, 3))), conv_attrs((2, 2), (1, 1), groups=2), "grouped_strided"),
    OpCase("conv", (randn(1, 4, 10, 10), W(randn(4, 1, 3, 3)), W(randn(4))),
           conv_attrs(padding=(2, 2), dilation=(2, 2), groups=4), "depthwise_dilated"),
    OpCase("conv", (randn(1, 3, 8, 9), W(randn(4, 3, 1, 3))), conv_attrs((2, 1), (0, 1)), "asymmetric"),
    OpCase("conv", (randn(2, 3, 16), W(randn(5, 3, 5)), W(randn(5))), conv_attrs((2,), (2,), (1,)), "1d"),
    OpCase("conv", (randn(1, 2, 5, 6, 6), W(randn(3, 2, 3, 3, 3))), conv_attrs((1, 1, 1), (1, 1, 1), (1, 1, 1)), "3d"),
    OpCase("conv_transpose", (randn(1, 4, 5, 5), W(randn(4, 3, 3, 3)), W(randn(3))),
           dict(stride=(2, 2), padding=(1, 1), output_padding=(1, 1), dilation=(1, 1)), "output_padding"),
    OpCase("conv_transpose", (randn(1, 4, 7), W(randn(4, 2, 3))),
           dict(stride=(3,), padding=(1,), output_padding=(1,), dilation=(2,), groups=2), "1d_grouped_dilated"),
    OpCase("linear", (randn(3, 8), W(randn(5, 8)), W(randn(5))), {}, "2d_gemm"),
    OpCase("linear", (randn(3, 8), W(randn(5, 8))), {}, "2d_no_bias"),
    OpCase("linear", (randn(2, 4, 8), W(randn(5, 8)), W(randn(5))), {}, "3d_matmul"),
    OpCase("linear", (randn(2, 4, 8), W(randn(5, 8))), {}, "3d_no_bias"),
    OpCase("linear", (randn(2, 4, 8), randn(5, 8), randn(5)), {}, "weight_is_input"),
    OpCase("matmul", (randn(2, 3, 4, 5), W(randn(5, 6))), {}, "weight"),
    OpCase("matmul", (randn(2, 1, 4, 5), randn(3, 5, 2)), {}, "broadcast"),
    OpCase("matmul", (randn(5), randn(2, 5, 3)), {}, "vector"),
    OpCase("embedding", (ints(2, 5), W(randn(10, 4))), {}, "int64"),
    OpCase("embedding", (ints(7, dtype=torch.int32), W(randn(10, 4))), {}, "int32"),
    # ---- norm
    OpCase("batch_norm", (randn(2, 4, 5, 5), W(randn(4)), W(positive(4)), W(randn(4)), W(randn(4))), {}, "affine"),
    OpCase("batch_norm", (randn(3, 4), W(randn(4)), W(positive(4))), {"eps": 1e-3}, "2d_no_affine"),
    OpCase("batch_norm", (randn(2, 4, 7), W(randn(4)), W(positive(4)), None, W(randn(4))), {}, "1d_bias_only"),
    OpCase("layer_norm", (randn(2, 5, 8), W(randn(8)), W(randn(8))), {"normalized_shape": (8,)}, "affine"),
    OpCase("layer_norm", (randn(2, 5, 8), W(randn(5, 8))), {"normalized_shape": (5, 8), "eps": 1e-6}, "2dims_no_bias"),
    OpCase("layer_norm", (randn(2, 5, 8), None, W(randn(8))), {"normalized_shape": (8,)}, "bias_only"),
    OpCase("group_norm", (randn(2, 6, 4, 4), W(randn(6)), W(randn(6))), {"num_groups": 3}, "affine"),
    OpCase("group_norm", (randn(2, 6, 5), None, None), {"num_groups": 2}, "1d_no_affine"),
    OpCase("group_norm", (randn(2, 4, 3, 3), W(randn(4))), {"num_groups": 4, "eps": 1e-3}, "weight_only"),
    # ---- activations
    *[OpCase(op, (randn(2, 3, 4, 5, scale=3.0),)) for op in (
        "relu", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid", "exp", "neg", "abs", "erf")],
    *[OpCase(op, (positive(2, 3, 4),)) for op in ("log", "sqrt", "rsqrt")],
    OpCase("gelu", (randn(2, 3, 4, scale=3.0),), {}, "exact"),
    OpCase("gelu", (randn(2, 3, 4, scale=3.0),), {"approximate": "tanh"}, "tanh"),
    OpCase("leaky_relu", (randn(2, 3, 4),), {"negative_slope": 0.2}),
    OpCase("clip", (randn(2, 3, 4, scale=4.0),), {"min": 0.0, "max": 6.0}, "relu6"),
    OpCase("clip", (randn(2, 3, 4),), {"min": -0.5}, "min_only"),
    OpCase("clip", (randn(2, 3, 4),), {"max": 0.5}, "max_only"),
    OpCase("softmax", (randn(2, 3, 4),), {"dim": 1}),
    OpCase("softmax", (randn(2, 3, 4),), {"dim": -1}, "last"),
    OpCase("log_softmax", (randn(2, 3, 4),), {"dim": -1}),
    # ---- elementwise binary
    OpCase("add", (randn(2, 3, 4), W(randn(3, 1))), {}, "broadcast"),
    OpCase("add", (ints(2, 3), W(randn(3))), {}, "int_plus_float"),
    OpCase("sub", (randn(2, 3, 4), randn(4))),
    OpCase("mul", (randn(2, 3, 4), W(torch.tensor(2.5))), {}, "scalar"),
    OpCase("mul", (ints(2, 3), ints(2, 3)), {}, "int"),
    OpCase("div", (randn(2, 3, 4), positive(3, 1))),
    OpCase("div", (ints(2, 5, low=-20, high=20), ints(5, low=1, high=6)), {}, "int_true"),
    OpCase("div", (_DIV_A, _DIV_B), {"rounding_mode": "floor"}, "float_floor"),
    OpCase("div", (_DIV_A, _DIV_B), {"rounding_mode": "trunc"}, "float_trunc"),
    OpCase("div", (ints(4, 6, low=-20, high=20), torch.tensor([3, -3, 4, -4, 7, -1])), {"rounding_mode": "floor"}, "int_floor"),
    OpCase("div", (ints(4, 6, low=-20, high=20, dtype=torch.int32),
                   torch.tensor([3, -3, 4, -4, 7, -1], dtype=torch.int32)), {"rounding_mode": "trunc"}, "int_trunc"),
    OpCase("pow", (positive(2, 3), randn(3))),
    OpCase("pow", (randn(2, 3), W(torch.tensor(2.0))), {}, "square"),
    OpCase("maximum", (randn(2, 3, 4), randn(3, 4))),
    OpCase("minimum", (randn(2, 3, 4), W(randn(1, 4)))),
    # ---- shape
    OpCase("reshape", (randn(2, 3, 4),), {"shape": (6, 4)}),
    OpCase("reshape", (randn(2, 3, 4),), {"shape": (2, 1, 12)}, "unsqueeze"),
    OpCase("permute", (randn(2, 3, 4, 5),), {"dims": (0, 2, 3, 1)}),
    OpCase("permute", (randn(2, 3, 4),), {"dims": (-1, 0, 1)}, "negative"),
    OpCase("concat", (randn(2, 3, 4), randn(2, 1, 4), W(randn(2, 2, 4))), {"dim": 1}),
    OpCase("concat", (randn(2, 3), randn(2, 5)), {"dim": -1}, "last"),
    OpCase("split", (randn(2, 6, 4),), {"sizes": (2, 3, 1), "dim": 1}),
    OpCase("split", (randn(2, 6, 4),), {"sizes": (2, 2), "dim": -1}, "last"),
    OpCase("slice", (randn(2, 9, 4),), {"dim": 1, "start": 1, "end": 8, "step": 2}, "step"),
    OpCase("slice", (randn(2, 9, 4),), {"dim": 2, "start": 2, "end": 100}, "end_past_size"),
    OpCase("expand", (randn(3, 1),), {"shape": (2, 3, 4)}),
    OpCase("pad", (randn(1, 2, 4, 5),), {"pads": (1, 2, 0, 1), "value": 1.5}, "constant"),
    OpCase("pad", (randn(1, 2, 4, 5),), {"pads": (-1, 2, 1, -1)}, "negative_crop"),
    OpCase("pad", (ints(2, 3, 4),), {"pads": (1, 1), "value": 7.0}, "int"),
    OpCase("pad", (randn(1, 2, 4, 5),), {"pads": (2, 1, 1, 2), "mode": "reflect"}, "reflect"),
    OpCase("pad", (randn(1, 2, 6),), {"pads": (3, 1), "mode": "replicate"}, "replicate"),
    OpCase("pad", (randn(1, 2, 4, 5),), {"pads": (2, 1, 1, 2), "mode": "circular"}, "circular", min_opset=19),
    OpCase("cast", (randn(2, 3, scale=5.0),), {"dtype": torch.int32}, "float_to_int"),
    OpCase("cast", (randn(2, 3),), {"dtype": torch.float16}, "to_half"),
    OpCase("cast", (ints(2, 3),), {"dtype": torch.float32}, "int_to_float"),
    OpCase("cast", (torch.tensor([0.0, 1.5, -2.0]),), {"dtype": torch.bool}, "to_bool"),
    # ---- pooling and resampling
    OpCase("max_pool", (randn(1, 2, 9, 9),), pool_attrs((3, 3), (2, 2), (1, 1), dilation=(1, 1))),
    OpCase("max_pool", (randn(1, 2, 8, 8),), pool_attrs((3, 3), (2, 2), (0, 0), dilation=(1, 1), ceil_mode=True), "ceil"),
    OpCase("max_pool", (randn(1, 2, 9, 9),), pool_attrs((2, 2), (2, 2), (1, 1), dilation=(1, 1), ceil_mode=True), "ceil_padded"),
    OpCase("max_pool", (randn(1, 2, 11, 11),), pool_attrs((3, 3), (1, 1), (1, 1), dilation=(2, 2)), "dilated"),
    OpCase("max_pool", (randn(1, 2, 9, 10),), pool_attrs((2, 2), (2, 2), (1, 1), dilation=(2, 2), ceil_mode=True),
           "ceil_dilated"),
    OpCase("max_pool", (randn(2, 3, 10),), pool_attrs((3,), (2,), (1,), dilation=(1,)), "1d"),
    OpCase("avg_pool", (randn(1, 2, 9, 9),), pool_attrs((3, 3), (2, 2), (1, 1)), "include_pad"),
    OpCase("avg_pool", (randn(1, 2, 9, 9),), pool_attrs((3, 3), (2, 2), (1, 1), count_include_pad=False), "exclude_pad"),
    OpCase("avg_pool", (randn(1, 2, 8, 8),), pool_attrs((3, 3), (2, 2), (0, 0), ceil_mode=True), "ceil"),
    OpCase("avg_pool", (randn(1, 2, 8, 8),), pool_attrs((3, 3), (2, 2), (1, 1), ceil_mode=True), "ceil_include_pad"),
    OpCase("avg_pool", (randn(2, 3, 10),), pool_attrs((2,), (2,), (0,)), "1d"),
    OpCase("avg_pool", (randn(1, 2, 4, 6, 6),), pool_attrs((2, 2, 2), (2, 2, 2), (0, 0, 0)), "3d"),
    OpCase("adaptive_avg_pool", (randn(2, 3, 7, 7),), {"output_size": (1, 1)}, "global"),
    OpCase("adaptive_avg_pool", (randn(2, 3, 8, 6),), {"output_size": (4, 3)}, "divisible"),
    OpCase("adaptive_avg_pool", (randn(2, 3, 12),), {"output_size": (3,)}, "1d"),
    OpCase("adaptive_max_pool", (randn(2, 3, 7, 7),), {"output_size": (1, 1)}, "global"),
    OpCase("adaptive_max_pool", (randn(2, 3, 8, 8),), {"output_size": (2, 4)}, "divisible"),
    OpCase("resize", (randn(1, 2, 4, 5),), {"size": (8, 10)}, "nearest_2x"),
    OpCase("resize", (randn(1, 2, 5, 7),), {"size": (7, 4)}, "nearest_uneven"),
    OpCase("resize", (randn(1, 2, 5, 7),), {"size": (8, 3), "mode": "nearest-exact"}, "nearest_exact"),
    OpCase("resize", (randn(1, 2, 4, 5),), {"size": (7, 9), "mode": "bilinear", "align_corners": False}, "bilinear"),
    OpCase("resize", (randn(1, 2, 8, 9),), {"size": (5, 4), "mode": "bilinear", "align_corners": False}, "bilinear_down"),
    OpCase("resize", (randn(1, 2, 4, 5),), {"size": (7, 9), "mode": "bilinear", "align_corners": True}, "bilinear_corners"),
    OpCase("resize", (randn(1, 2, 4, 5),), {"size": (7, 9), "mode": "bicubic", "align_corners": False}, "bicubic"),
    OpCase("resize", (randn(1, 2, 4, 5),), {"size": (6, 11), "mode": "bicubic", "align_corners": True}, "bicubic_corners"),
    OpCase("resize", (randn(2, 3, 6),), {"size": (11,), "mode": "linear", "align_corners": False}, "linear_1d"),
    OpCase("resize", (randn(1, 2, 3, 4, 4),), {"size": (5, 6, 8), "mode": "trilinear", "align_corners": False}, "trilinear"),
    # ---- reductions
    *[OpCase(op, (randn(2, 3, 4, 5),), {"dims": (2, 3), "keepdim": True}, "spatial_keepdim")
      for op in ("reduce_mean", "reduce_sum", "reduce_max", "reduce_min")],
    *[OpCase(op, (randn(2, 3, 4),), {"dims": (-1,)}, "last")
      for op in ("reduce_mean", "reduce_sum", "reduce_max", "reduce_min")],
    OpCase("reduce_sum", (ints(2, 3, 4, dtype=torch.int32),), {"dims": (1,)}, "int32_to_int64"),
    OpCase("reduce_max", (ints(2, 3, 4),), {"dims": (0, 2)}, "int"),
]


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


def test_outputs_may_be_inputs_weights_or_repeated():
    g = Graph("passthrough")
    x = g.add_input("x", TensorType((2,), torch.float32))
    w = g.add_weight("w", randn(2))
    y = g.create_node("neg", [x]).output
    g.outputs = [y, x, w, y]
    artifact = get_backend("pytorch")().lower(g, None)
    feeds = [randn(2)]
    got = artifact.run(*feeds)
    assert [torch.equal(a, b) for a, b in zip(got, interpret(g, *feeds))] == [True] * 4


# ---- model.py + weights.safetensors ---------------------------------------------------------
_RUN_STANDALONE = textwrap.dedent("""
    import importlib.util, sys
    import torch
    spec = importlib.util.spec_from_file_location("model", "model.py")
    model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model)
    assert sys.argv[3] not in sys.path, sys.path  # the nnforge checkout is not importable
    for name in ("compiler", "backends"):
        assert importlib.util.find_spec(name) is None, name
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
    repo = str(Path(__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, "-I", "-c", _RUN_STANDALONE, str(tmp_path / "inputs.pt"),
                           str(tmp_path / "outputs.pt"), repo], cwd=out_dir, env=env,
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

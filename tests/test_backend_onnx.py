"""The ONNX backend: IR -> ModelProto, checked by onnx.checker, run in onnxruntime.

Every op case of the shared catalogue (tests/op_cases.py) is exported at the lowest
and highest supported opsets and compared with the IR interpreter (rtol 1e-4, atol 1e-5).
"""
from __future__ import annotations

import time
from pathlib import Path

import onnx
import pytest
import torch

from backends.onnx import LOWERINGS, MAX_OPSET, MIN_OPSET, OnnxBackend
from compiler import options
from compiler.backend import get_backend
from compiler.errors import BackendError, PipelineError
from compiler.interpreter import interpret
from compiler.ir import Graph, TensorType
from compiler.ops import all_ops
from tests.op_cases import OP_CASES, OpCase, W, conv_attrs, randn
from tests.test_backend_pytorch import passthrough_graph, small_cnn

RTOL, ATOL = 1e-4, 1e-5


def lower(graph: Graph, output: Path | None = None, **opts):
    return get_backend("onnx")(**opts).lower(graph, output)


def assert_matches_interpreter(graph: Graph, feeds: list[torch.Tensor], artifact) -> None:
    expected = interpret(graph, *feeds)
    got = artifact.run(*feeds)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape
        torch.testing.assert_close(g, e, rtol=RTOL, atol=ATOL, equal_nan=True)


def onnx_nodes(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


# ---- coverage and per-op correctness ---------------------------------------------------------
def test_lowering_table_covers_the_op_registry_exactly():
    assert set(LOWERINGS) == set(all_ops())


@pytest.mark.parametrize("opset", [MIN_OPSET, MAX_OPSET])
@pytest.mark.parametrize("case", OP_CASES, ids=lambda c: c.id)
def test_op_matches_interpreter(case: OpCase, opset: int):
    if opset < case.min_opset:
        pytest.skip(f"{case.id} needs opset {case.min_opset}")
    graph, feeds = case.build()
    artifact = lower(graph, opset=opset)
    assert artifact.info["check"] == "passed (full_check)"
    assert_matches_interpreter(graph, feeds, artifact)
    assert unread_initializers(artifact.obj) == set()  # onnxruntime warns about each at every load


def unread_initializers(model: onnx.ModelProto) -> set[str]:
    read = {name for node in model.graph.node for name in node.input}
    return {t.name for t in model.graph.initializer} - read - {o.name for o in model.graph.output}


OPSET_SENSITIVE = {"gelu", "group_norm", "pad", "split", "resize", "reduce_mean", "reduce_sum",
                   "reduce_max", "reduce_min"}


@pytest.mark.parametrize("opset", [18, 19, 20])  # where ReduceX/Pad/Resize/Gelu change
@pytest.mark.parametrize("case", [c for c in OP_CASES if c.op in OPSET_SENSITIVE], ids=lambda c: c.id)
def test_opset_sensitive_ops_at_every_opset(case: OpCase, opset: int):
    test_op_matches_interpreter(case, opset)


# ---- errors: never silently wrong ----------------------------------------------------------
def single_node(op: str, x: torch.Tensor, attrs: dict, *extra) -> Graph:
    return OpCase(op, (x, *extra), attrs).build()[0]


@pytest.mark.parametrize("graph, message", [
    (single_node("pad", randn(1, 2, 4), {"pads": (1, 1), "mode": "circular"}), "opset=19"),
    (single_node("adaptive_avg_pool", randn(1, 2, 7, 7), {"output_size": (3, 3)}), "uneven windows"),
    (single_node("add", torch.tensor([True, False]), {}, torch.tensor([True, True])), "bool"),
    (single_node("conv", randn(3, 8, 8), conv_attrs(), W(randn(4, 3, 3, 3))), "unbatched"),
], ids=["circular_pad_opset17", "adaptive_pool_uneven", "bool_add", "unbatched_conv"])
def test_unlowerable_nodes_raise_backend_error_naming_the_node(graph: Graph, message: str):
    node = graph.nodes[0]
    with pytest.raises(BackendError) as info:
        lower(graph)
    text = str(info.value)
    assert f"%{node.name} ({node.op})" in text and message in text


def test_opset_option_is_validated():
    assert str(OnnxBackend(opset=18)) == "onnx{opset=18}"
    assert str(OnnxBackend()) == "onnx"
    with pytest.raises(ValueError, match=r"opset. must be in \[17, 24\]"):
        OnnxBackend(opset=16)
    with pytest.raises(PipelineError, match="opset"):
        options.build(get_backend("onnx"), "target", "onnx", {"opset": 25})
    assert options.build(get_backend("onnx"), "target", "onnx", {"opset": 20, "check": False}) == \
        OnnxBackend(opset=20, check=False)


# ---- opset-dependent forms -----------------------------------------------------------------
def test_gelu_is_a_gelu_node_from_opset_20_and_erf_before():
    graph, _ = OpCase("gelu", (randn(4),), {}).build()
    assert "Erf" in onnx_nodes(lower(graph, opset=19).obj)
    assert onnx_nodes(lower(graph, opset=20).obj) == ["Gelu"]


def test_reduce_mean_axes_move_to_an_input_at_opset_18():
    graph, _ = OpCase("reduce_mean", (randn(2, 3, 4),), {"dims": (1,)}).build()
    old, new = lower(graph, opset=17).obj.graph.node[0], lower(graph, opset=18).obj.graph.node[0]
    assert [a.name for a in old.attribute if a.name == "axes"] == ["axes"] and len(old.input) == 1
    assert len(new.input) == 2 and "axes" not in [a.name for a in new.attribute]


def test_circular_pad_is_wrap_from_opset_19():
    graph, feeds = OpCase("pad", (randn(1, 2, 5),), {"pads": (2, 1), "mode": "circular"}).build()
    artifact = lower(graph, opset=19)
    pad = artifact.obj.graph.node[0]
    assert pad.op_type == "Pad" and onnx.helper.get_attribute_value(pad.attribute[0]) == b"wrap"
    assert_matches_interpreter(graph, feeds, artifact)


def test_linear_on_3d_input_uses_a_pretransposed_weight_initializer():
    graph, _ = OpCase("linear", (randn(2, 4, 8), W(randn(5, 8)), W(randn(5)))).build()
    model = lower(graph).obj
    assert onnx_nodes(model) == ["MatMul", "Add"]
    shapes = {t.name: list(t.dims) for t in model.graph.initializer}
    assert shapes == {"linear/weight_t_0": [8, 5], "linear.bias": [5]}


# ---- the model as users see it -------------------------------------------------------------
def test_names_types_and_metadata_follow_the_ir():
    graph, feeds = small_cnn()
    model = lower(graph).obj
    g = model.graph
    assert [i.name for i in g.input] == ["x"]
    assert [o.name for o in g.output] == [v.name for v in graph.outputs]
    assert {t.name for t in g.initializer} >= {"stem.conv.weight", "stem.bn.running_mean", "fc.weight"}
    assert [n.name for n in g.node if n.op_type == "Conv"] == ["stem.conv"]
    dims = [d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 3, 8, 8]
    assert {v.name for v in g.value_info} == {"stem.conv", "stem.bn", "stem.relu", "residual", "pool",
                                              "flatten", "halves.0"}
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert model.producer_name == "nnforge"


def test_outputs_may_be_inputs_weights_or_repeated():
    g = passthrough_graph()
    artifact = lower(g)
    assert [o.name for o in artifact.obj.graph.output] == ["neg", "x/output_1", "w/output_2", "neg/output_3"]
    assert_matches_interpreter(g, [randn(2)], artifact)


def test_written_file_is_the_checked_model(tmp_path: Path):
    graph, feeds = small_cnn()
    path = tmp_path / "model.onnx"
    artifact = lower(graph, path)
    assert artifact.files == [path]
    assert path.read_bytes() == artifact.obj.SerializeToString()
    assert artifact.info["bytes"] == path.stat().st_size
    onnx.checker.check_model(str(path), full_check=True)
    assert_matches_interpreter(graph, feeds, artifact)


def test_check_false_skips_the_checker():
    graph, _ = small_cnn()
    assert lower(graph, check=False).info["check"] == "skipped"


def test_failed_lowering_leaves_an_existing_file_untouched(tmp_path: Path):
    good, _ = small_cnn()
    path = tmp_path / "model.onnx"
    lower(good, path)
    before = path.read_bytes()
    bad = single_node("pad", randn(1, 2, 4), {"pads": (1, 1), "mode": "circular"})
    with pytest.raises(BackendError):
        lower(bad, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_models_over_the_protobuf_limit_use_external_data(tmp_path: Path, monkeypatch):
    import backends.onnx as onnx_backend
    monkeypatch.setattr(onnx_backend, "PROTOBUF_LIMIT", 1000)  # pretend small models are 2 GB
    monkeypatch.setattr(onnx_backend, "EXTERNAL_THRESHOLD", 64)
    graph, feeds = small_cnn()
    assert lower(graph).runner is None  # nothing onnxruntime could load without a file
    path = tmp_path / "big.onnx"
    artifact = lower(graph, path)
    assert artifact.files == [path, tmp_path / "big.onnx.data"]
    assert artifact.info["check"] == "passed (full_check)"
    assert artifact.info["external_data"] == "big.onnx.data"
    stored = onnx.load(str(path), load_external_data=False)
    external = {t.name for t in stored.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL}
    assert {"stem.conv.weight", "fc.weight"} <= external
    assert (tmp_path / "big.onnx.data").stat().st_size >= (8 * 3 * 3 * 3 + 4 * 8) * 4
    assert_matches_interpreter(graph, feeds, artifact)


# ---- whole networks ------------------------------------------------------------------------
def resnet50_graph(size: int, batch: int = 1) -> Graph:
    """ResNet-50 built by hand through the Graph API: 53 conv+BN, 25.5M parameters."""
    g = Graph("resnet50")
    x = g.add_input("x", TensorType((batch, 3, size, size), torch.float32))
    gen = torch.Generator().manual_seed(50)

    def randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return torch.randn(shape, generator=gen) * scale

    def positive(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=gen) + 0.1

    def conv_bn(h, name: str, cin: int, cout: int, k: int, stride: int, relu: bool = True):
        w = g.add_weight(f"{name}.weight", randn(cout, cin, k, k, scale=(2.0 / (cin * k * k)) ** 0.5))
        h = g.create_node("conv", [h, w], conv_attrs((stride, stride), (k // 2, k // 2)), name=name).output
        bn = name.replace("conv", "bn")
        stats = [g.add_constant(f"{bn}.running_mean", randn(cout, scale=0.1)),
                 g.add_constant(f"{bn}.running_var", positive(cout)),
                 g.add_weight(f"{bn}.weight", positive(cout) * (1.0 if relu else 0.2)),  # tame residuals
                 g.add_weight(f"{bn}.bias", randn(cout, scale=0.1))]
        h = g.create_node("batch_norm", [h, *stats], name=bn).output
        return g.create_node("relu", [h], name=f"{name}.relu").output if relu else h

    h = conv_bn(x, "conv1", 3, 64, 7, 2)
    h = g.create_node("max_pool", [h], dict(kernel=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1)),
                      name="maxpool").output
    cin = 64
    for stage, (blocks, width) in enumerate([(3, 64), (4, 128), (6, 256), (3, 512)], start=1):
        for i in range(blocks):
            stride = 2 if i == 0 and stage > 1 else 1
            p = f"layer{stage}.{i}"
            out = conv_bn(h, f"{p}.conv1", cin, width, 1, 1)
            out = conv_bn(out, f"{p}.conv2", width, width, 3, stride)
            out = conv_bn(out, f"{p}.conv3", width, width * 4, 1, 1, relu=False)
            skip = conv_bn(h, f"{p}.downsample.conv", cin, width * 4, 1, stride, relu=False) if i == 0 else h
            h = g.create_node("add", [out, skip], name=f"{p}.add").output
            h = g.create_node("relu", [h], name=f"{p}.relu").output
            cin = width * 4
    h = g.create_node("adaptive_avg_pool", [h], {"output_size": (1, 1)}, name="avgpool").output
    h = g.create_node("reshape", [h], {"shape": (batch, 2048)}, name="flatten").output
    fc = [g.add_weight("fc.weight", randn(1000, 2048, scale=0.02)), g.add_weight("fc.bias", randn(1000))]
    g.outputs = [g.create_node("linear", [h, *fc], name="fc").output]
    return g


def test_resnet50_graph_matches_interpreter():
    graph = resnet50_graph(64)
    assert graph.param_count() == 25_557_032
    feeds = [torch.randn((1, 3, 64, 64), generator=torch.Generator().manual_seed(1))]
    assert_matches_interpreter(graph, feeds, lower(graph))


def test_resnet50_at_224_exports_quickly():
    """Export = IR -> ModelProto -> bytes (+ full check). Printed for the report, bound kept loose."""
    graph = resnet50_graph(224)
    start = time.perf_counter()
    artifact = lower(graph, check=False)
    export_s = time.perf_counter() - start
    start = time.perf_counter()
    onnx.checker.check_model(artifact.obj.SerializeToString(), full_check=True)
    check_s = time.perf_counter() - start
    print(f"\nresnet50@224 ONNX export: {export_s * 1000:.0f} ms "
          f"({artifact.info['bytes'] / 2**20:.1f} MiB), full check {check_s * 1000:.0f} ms")
    assert export_s < 2.0  # typically ~0.1 s; loose because test machines are shared

"""`simd-sparsify`: SIMD-shaped groups and N:M masks on conv/linear/matmul weights.

A pruned group is `simd` output channels at one input position, all zero together; the user's
tensors are never written; the pass is exact when every pruned group was zero already; depthwise
layers are skipped with a reason and a last group shorter than `simd` is handled; the PyTorch
backend's sparse kernel reproduces the masked graph on zoo models from both frontends.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from compiler.api import compile
from compiler.backend import get_backend
from compiler.context import PassContext, TargetDescription
from compiler.errors import PipelineError
from compiler.frontend import import_model
from compiler.interpreter import interpret
from compiler.ir_parser import parse_graph
from compiler.pipeline import parse_pipeline
from compiler.printer import print_graph
from compiler.sparse import SparsityAnnotation
from passes.simd_sparsity import SimdSparsify
from tests.zoo import build

SPARSE_TORCH = get_backend("pytorch")(sparse_kernel=True)


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(4, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 20, 3, stride=2),
                         nn.ReLU(), nn.Conv2d(20, 20, 3, groups=20), nn.Flatten(), nn.Linear(20 * 9, 10)).eval()


def sparsify(model, x, **options):
    graph = import_model(model, (x,))
    result = SimdSparsify(**options).run(graph, PassContext(target=TargetDescription(simd_width=8)))
    return graph, result.stats


def groups_of(weight: torch.Tensor, lanes: int) -> torch.Tensor:
    """[out/lanes blocks, lanes, input positions] of a conv or linear weight (out divisible by lanes)."""
    return weight.reshape(weight.shape[0] // lanes, lanes, -1)


def test_groups_are_simd_output_channels_at_one_input_position():
    model, x = small_cnn(), torch.randn(2, 4, 12, 12)
    original = model[0].weight.detach().clone()
    graph, stats = sparsify(model, x, sparsity=0.75, simd=16)
    w = graph.weights["0.weight"]
    blocks = groups_of(w.data, 16)
    zero = (blocks == 0).all(dim=1)
    assert ((blocks != 0).all(dim=1) | zero).all()  # a group is all zero or untouched
    assert zero.float().mean() == 0.75
    assert torch.equal(model[0].weight, original)  # the user's tensor is never written
    assert w.annotation(SparsityAnnotation) == SparsityAnnotation("simd", (16, 1), 18, 72)
    assert stats["density"] == 0.25 and stats["exact"] == "no"
    assert 0 < stats["weight_error"] < 1 and stats["output_error"] > 0


def test_lanes_default_to_the_target_and_the_last_group_may_be_shorter():
    model, x = small_cnn(), torch.randn(2, 4, 12, 12)
    graph, stats = sparsify(model, x, sparsity=0.5)  # simd from the target: 8 lanes
    assert stats["simd"] == 8
    linear = graph.weights["6.weight"].data  # 10 outputs: groups of 8 and of 2
    assert (((linear[:8] == 0).all(0)) | ((linear[:8] != 0).all(0))).all()
    assert (((linear[8:] == 0).all(0)) | ((linear[8:] != 0).all(0))).all()
    graph16, _ = sparsify(model, x, sparsity=0.5, simd=16)
    out = compile(graph16, (x,), target=SPARSE_TORCH).artifact.run(x)[0]
    torch.testing.assert_close(out, interpret(graph16, x)[0], rtol=1e-5, atol=1e-6)


def test_depthwise_and_narrow_layers_are_skipped_with_a_reason():
    _, stats = sparsify(small_cnn(), torch.randn(2, 4, 12, 12), simd=16)
    assert stats["skipped"] == 2
    assert "4: 1 output channel(s) per group, fewer than simd=16" in stats["skipped_layers"]
    assert "6: 10 output channel(s) per group, fewer than simd=16" in stats["skipped_layers"]
    assert stats["layers"] == 2  # of 4


def test_pruning_groups_that_are_zero_already_is_exact():
    model, x = small_cnn(), torch.randn(2, 4, 12, 12)
    graph = import_model(model, (x,))
    for name in ("0.weight", "2.weight"):
        w = graph.weights[name].data
        keep = torch.rand(w.shape[0] // 4, 1, w[0].numel(), generator=torch.Generator().manual_seed(1)) < 0.4
        graph.weights[name].data = (groups_of(w, 4) * keep).reshape(w.shape)  # >= 60% of the groups are zero
    graph.weights["6.weight"].data = graph.weights["6.weight"].data * 0
    before = interpret(graph, x)
    result = compile(graph, (x,), "simd-sparsify{simd=4,sparsity=0.5}", check_equivalence=True)
    record = result.report.passes[0]
    assert record.stats["exact"] == "yes" and record.stats["weight_error"] == 0
    assert record.max_abs_diff == 0 and torch.equal(interpret(result.graph, x)[0], before[0])


def test_n_m_keeps_n_of_every_m_input_channels():
    model, x = small_cnn(), torch.randn(2, 4, 12, 12)
    graph, stats = sparsify(model, x, pattern="nm", n=2, m=4)
    w = graph.weights["2.weight"].data  # [20, 32, 3, 3]
    per_window = (w.reshape(20, 8, 4, 9) != 0).sum(dim=2)
    assert (per_window == 2).all()
    assert graph.weights["2.weight"].annotation(SparsityAnnotation).density == 0.5
    assert "4: 1 input channels per group are not a multiple of m=4" in stats["skipped_layers"]


def test_ratios_skip_and_only_select_layers_by_name():
    model, x = small_cnn(), torch.randn(2, 4, 12, 12)
    _, stats = sparsify(model, x, sparsity=0.5, ratios={"6": 0.25}, skip=["2"])
    assert stats["density.0"] == 0.5 and stats["density.6"] == 0.75 and "density.2" not in stats
    graph, stats = sparsify(model, x, only=["2"])
    assert stats["layers"] == 1 and graph.weights["2.weight"].annotation(SparsityAnnotation) is not None


def test_taylor_importance_reads_the_calibration_data():
    model, x = small_cnn(), torch.randn(2, 4, 12, 12)
    graph_l1 = import_model(model, (x,))
    graph_taylor = import_model(model, (x,))
    SimdSparsify(importance="l1", simd=4).run(graph_l1, PassContext())
    stats = SimdSparsify(importance="taylor", simd=4).run(
        graph_taylor, PassContext().with_calibration([x], "user data")).stats
    assert stats["calibration.source"] == "user data"
    assert not torch.equal(graph_l1.weights["2.weight"].data != 0, graph_taylor.weights["2.weight"].data != 0)


def test_the_annotation_prints_and_parses_back():
    graph, _ = sparsify(small_cnn(), torch.randn(2, 4, 12, 12), simd=8)
    text = print_graph(graph)
    assert "@sparsity<pattern='simd', group=(8, 1), kept=" in text
    again = parse_graph(text, {name: w.data for name, w in graph.weights.items()})
    assert print_graph(again) == text


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2"])
def test_zoo_models_run_through_the_kernel_from_both_frontends(name, tmp_path):
    zoo = build(name, batch=1)
    onnx_file = tmp_path / f"{name}.onnx"
    compile(zoo.module, zoo.example_inputs, target="onnx", output=onnx_file)
    for model in (zoo.module, onnx_file):
        result = compile(model, zoo.example_inputs, "fold-bn,simd-sparsify{sparsity=0.75}",
                         target=["pytorch", SPARSE_TORCH], check_equivalence=True)
        stats = result.report.passes[-1].stats
        assert stats["layers"] > 10 and abs(stats["density"] - 0.25) < 0.01
        dense, sparse = (a.run(*zoo.example_inputs)[0] for a in result.artifacts)
        scale = dense.abs().max()
        assert (sparse - dense).abs().max() <= 1e-5 * scale, model
        assert result.report.artifacts[1]["max_rel_diff"] <= 1e-5


def test_bad_options_name_the_problem():
    with pytest.raises(PipelineError, match="simd must be one of"):
        parse_pipeline("simd-sparsify{simd=6}")
    with pytest.raises(PipelineError, match="latency-budget needs pattern=simd"):
        parse_pipeline("simd-sparsify{pattern=nm,latency-budget=0.5}")
    with pytest.raises(PipelineError, match='write "2.0ms" for milliseconds'):
        parse_pipeline("simd-sparsify{latency-budget=2}")
    assert str(parse_pipeline('simd-sparsify{latency-budget="8ms"}')) == 'simd-sparsify{latency-budget="8ms"}'

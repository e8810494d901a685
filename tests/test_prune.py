"""The `prune` pass on the reference zoo, its options, and its place in pipelines.

Every zoo model prunes at 30, 50 and 70% and still verifies and runs; the PyTorch backend and
onnxruntime agree on the pruned model (rtol 1e-4, atol 1e-5). Models are imported once and
deep-copied per case to keep the suite fast.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import torch

from compiler import compile
from compiler.errors import PipelineError
from compiler.frontend import import_model
from compiler.interpreter import interpret
from compiler.pipeline import parse_pipeline
from compiler.verifier import verify
from passes.prune import Prune, analyze, prune_graph
from tests.prune_util import assert_close, clone, run_backends
from tests.zoo import build

ZOO = {
    "resnet50": {"input_size": 32},
    "mobilenetv2": {"input_size": 32, "width_mult": 0.5},
    "repvgg": {},
    "vit": {},
    "bert": {},
    "unet": {"input_size": 32},
    "yolo": {"input_size": 64},
    "densenet": {},
    "gqa": {},
}


@lru_cache(maxsize=None)
def imported(name: str):
    z = build(name, **ZOO[name])
    return import_model(z.module, z.example_inputs), z.example_inputs


def _weight_shapes(graph):
    return {name: tuple(w.shape) for name, w in graph.weights.items()}


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_prunes_and_runs_in_both_backends(name, ratio):
    original, inputs = imported(name)
    graph = clone(original)
    before = graph.param_count()
    stats = prune_graph(graph, ratio=ratio)
    verify(graph)
    assert stats["removed_channels"] > 0 and graph.param_count() < before
    assert [v.type for v in graph.inputs] == [v.type for v in original.inputs]
    assert [v.type for v in graph.outputs] == [v.type for v in original.outputs]
    torch_out, onnx_out = run_backends(graph, inputs)
    assert_close(torch_out, interpret(graph, *inputs), "pytorch backend vs interpreter")
    assert_close(onnx_out, torch_out, "onnxruntime vs pytorch")


def test_heads_and_head_counts_are_rewritten():
    original, inputs = imported("vit")
    graph = clone(original)
    prune_graph(graph, ratio=0.5)
    qkv = graph.weights["blocks.0.attn.qkv.weight"]
    assert qkv.shape[0] == 96  # 2 of 4 heads (of 16 channels) left, for q, k and v
    shapes = [n.attrs["shape"] for n in graph.nodes if n.op == "reshape" and len(n.attrs["shape"]) == 5]
    assert all(s[2:4] == (3, 2) for s in shapes)  # (B, N, 3, heads, head_dim)
    original, inputs = imported("gqa")
    graph = clone(original)
    prune_graph(graph, ratio=0.5)
    assert graph.weights["layers.0.attn.k_proj.weight"].shape[0] == 8  # 1 of 2 kv heads
    assert graph.weights["layers.0.attn.q_proj.weight"].shape[0] == 32  # its 4 query heads
    expands = [n.attrs["shape"] for n in graph.nodes if n.op == "expand"]
    assert all(s[1:3] == (1, 4) for s in expands)  # kv heads x query heads per kv head


def test_no_layer_is_ever_emptied():
    for name in ("resnet50", "yolo", "gqa"):
        original, inputs = imported(name)
        graph = clone(original)
        prune_graph(graph, ratio=0.99, scope="global")
        verify(graph)
        assert all(0 not in w.shape for w in graph.weights.values())
        interpret(graph, *inputs)


@pytest.mark.parametrize("scope", ["local", "global"])
def test_round_to_keeps_pruned_dims_multiples(scope):
    original, inputs = imported("resnet50")
    graph = clone(original)
    before = _weight_shapes(graph)
    prune_graph(graph, ratio=0.37, round_to=8, scope=scope)
    changed = 0
    for name, w in graph.weights.items():
        if w.rank >= 2:
            for d in range(2):
                if w.shape[d] != before[name][d] and before[name][d] % 8 == 0:
                    assert w.shape[d] % 8 == 0, (name, w.shape)
                    changed += 1
    assert changed > 50
    interpret(graph, *inputs)


def test_round_to_counts_head_width():
    original, _ = imported("vit")
    graph = clone(original)
    prune_graph(graph, ratio=0.5, round_to=32)  # a head is 16 channels: heads go in pairs
    proj = graph.weights["blocks.0.attn.proj.weight"]
    assert proj.shape[1] % 32 == 0


def test_ignore_and_per_layer_ratios():
    original, inputs = imported("resnet50")
    graph = clone(original)
    before = _weight_shapes(graph)
    prune_graph(graph, ratio=0.5, ignore=["layer1"], ratios={"layer4": 0.25, "layer3.0.conv1": 0.0})
    for name, w in graph.weights.items():
        if name.startswith("layer1."):
            assert tuple(w.shape) == before[name], name
    assert graph.weights["layer4.0.conv1.weight"].shape[0] == 384  # 512 * (1 - 0.25)
    assert graph.weights["layer3.0.conv1.weight"].shape[0] == 256
    assert graph.weights["layer2.0.conv1.weight"].shape[0] == 64
    run_backends(graph, inputs)


@pytest.mark.parametrize("importance", ["l1", "l2", "bn-scale", "lamp", "random", "taylor"])
def test_importance_methods(importance):
    original, inputs = imported("yolo" if importance != "taylor" else "bert")
    graph = clone(original)
    stats = prune_graph(graph, ratio=0.5, importance=importance, scope="global", calibration=1)
    verify(graph)
    assert stats["removed_channels"] > 0
    interpret(graph, *inputs)


def test_magnitude_importance_removes_the_weakest_channels():
    original, inputs = imported("repvgg")
    graph = clone(original)
    w = graph.weights["stages.3.0.rbr_dense.conv.weight"]
    keep = torch.ones(w.shape[0], dtype=torch.bool)
    keep[::2] = False  # make every other output channel tiny in every layer it touches
    from passes.prune.groups import analyze as analyze_groups
    from tests.prune_util import group_of, positions
    a = analyze_groups(graph)
    g = group_of(a, w.name, 0)
    weak = g.units[::2]
    for site in a.sites:
        for v, d in a.weight_members(site):
            idx = positions(a, weak, v, d)
            if idx and v.rank >= 2:
                v.data = v.data.clone()
                v.data.index_fill_(d, torch.tensor(idx), 1e-6)
    prune_graph(graph, ratio=0.5)
    survivors = graph.weights["stages.3.0.rbr_dense.conv.weight"].data
    assert survivors.abs().amax(dim=(1, 2, 3)).min() > 1e-3


def test_steps_reach_the_ratio():
    original, _ = imported("densenet")
    once, twice = clone(original), clone(original)
    prune_graph(once, ratio=0.5)
    prune_graph(twice, ratio=0.5, steps=2)
    assert abs(once.param_count() - twice.param_count()) / once.param_count() < 0.15


def test_pipeline_text_and_compile():
    p = parse_pipeline('prune{ratio=0.3,importance=lamp,scope=global,round-to=8,ignore=[fc,"layer1.*"],'
                       "ratios={layer4=0.2},steps=2,calibration=4}")
    assert isinstance(p.passes[0], Prune) and parse_pipeline(str(p)) == p
    with pytest.raises(PipelineError):
        parse_pipeline("prune{ratio=1.0}")
    with pytest.raises(PipelineError):
        parse_pipeline("prune{importance=magnitude}")
    z = build("resnet18", width=8, input_size=16, batch=1)
    result = compile(z.module, z.example_inputs, pipeline="fold-bn,prune{ratio=0.5,round-to=4},dce",
                     target="onnx", check_equivalence=True)
    record = result.report.passes[1]
    assert record.name == "prune" and record.changed
    assert record.params_after < 0.4 * record.params_before and record.macs_after < record.macs_before
    assert record.stats["removed_channels"] > 0
    assert result.report.artifacts[0]["max_abs_diff"] < 1e-4  # onnx artifact vs the pruned IR


def test_pass_leaves_user_tensors_alone():
    z = build("repvgg")
    graph = import_model(z.module, z.example_inputs)
    before = {k: v.detach().clone() for k, v in z.module.state_dict().items()}
    prune_graph(graph, ratio=0.5)
    for k, v in z.module.state_dict().items():
        assert torch.equal(v, before[k]), k
    with torch.no_grad():
        z.module(*z.example_inputs)


def test_analysis_and_pruning_time_is_linear():
    import time

    from torch import nn

    def chain(n):
        layers = []
        for _ in range(n):
            layers += [nn.Linear(32, 32), nn.ReLU()]
        return import_model(nn.Sequential(*layers).eval(), (torch.randn(1, 32),))

    times = []
    for n in (100, 800):
        original, best = chain(n), float("inf")
        for _ in range(2):  # the fastest of two: the machine is shared
            graph = clone(original)
            start = time.perf_counter()
            prune_graph(graph, ratio=0.5)
            best = min(best, time.perf_counter() - start)
            assert graph.weights["0.weight"].shape == (16, 32)
        times.append(best)
    assert times[1] / times[0] < 8 * 2.5, times  # 8x the layers: linear ~8x, quadratic ~64x


def test_groups_of_every_zoo_model_are_consistent():
    for name in ZOO:
        graph, _ = imported(name)
        a = analyze(graph)
        assert not a.fallbacks, (name, a.fallbacks)
        assert sum(g.prunable for g in a.groups) >= 4, name
        units = np.concatenate([g.units for g in a.groups])
        assert len(units) == a.num_units == len(np.unique(units))


def test_taylor_uses_the_pipeline_calibration_data():
    z = build("repvgg")
    data = torch.randn(4, *z.example_inputs[0].shape[1:])
    result = compile(z.module, z.example_inputs, pipeline="prune{importance=taylor,calibration=2}",
                     calibration_data=data)
    stats = result.report.passes[0].stats
    assert stats["calibration.source"] == "user data" and stats["removed_channels"] == stats["channels"] // 2

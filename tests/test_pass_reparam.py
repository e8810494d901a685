"""reparam: every rewrite on its own, and whole multi-branch models, keep the outputs exactly.

Modules are plain torch, imported through `compiler.compile` (torch.fx frontend) in eval mode
with every BatchNorm's running statistics and affine parameters randomized. After the pipeline
the max abs difference to the module is at most 1e-5 of the output's scale; the user's tensors
are never modified; and the rewrite is checked to have fired (or been refused, with its reason).
"""
from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch import nn

from compiler import compile
from compiler.errors import NNForgeError
from compiler.interpreter import interpret
from compiler.manager import PassFailure, PassManager
from compiler.pipeline import parse_pipeline
from tests.zoo import build, randomize_batchnorm

PIPELINE = "fold-constants,fold-bn,reparam,dce"
TOLERANCE = 1e-5


def scaled_diff(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.double() - want.double()).abs().max() / want.double().abs().max()).item()


def reparam(module: nn.Module, *shape: int, pipeline: str = PIPELINE, seed: int = 0):
    """Compile `module` through `pipeline` and check exactness; returns (graph, reparam stats)."""
    torch.manual_seed(seed)
    randomize_batchnorm(module, seed).eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        want = module(x)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    result = compile(module, (x,), pipeline=pipeline, check_equivalence=True)
    (got,) = interpret(result.graph, x)
    assert scaled_diff(got, want) <= TOLERANCE
    for k, v in module.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} was modified in place"
    stats = next((p.stats for p in result.report.passes if p.name == "reparam"), {})
    return result.graph, stats


def seq(*layers):
    return nn.Sequential(*layers)


def ops(graph) -> Counter:
    return Counter(n.op for n in graph.nodes)


def conv_bn(cin, cout, k, stride=1, padding=0, groups=1, dilation=1, bn=True):
    layers = [nn.Conv2d(cin, cout, k, stride, padding, dilation=dilation, groups=groups, bias=not bn)]
    return nn.Sequential(*layers, nn.BatchNorm2d(cout)) if bn else layers[0]


class Sum(nn.Module):
    """Parallel branches on one input, summed (an identity entry is the input itself)."""

    def __init__(self, *branches: nn.Module | None):
        super().__init__()
        self.branches = nn.ModuleList([b if b is not None else nn.Identity() for b in branches])

    def forward(self, x):
        out = self.branches[0](x)
        for b in self.branches[1:]:
            out = out + b(x)
        return out


class Cat(nn.Module):
    def __init__(self, *branches: nn.Module):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches], dim=1)


# ---- parallel branches ------------------------------------------------------------------------
PARALLEL = {  # case -> (module, branches merged, input channels)
    "repvgg-3x3+1x1+identity-bn": (Sum(conv_bn(8, 8, 3, 1, 1), conv_bn(8, 8, 1), nn.BatchNorm2d(8)), 3, 8),
    "stride-2": (Sum(conv_bn(4, 8, 3, 2, 1), conv_bn(4, 8, 1, 2)), 2, 4),
    "grouped+identity": (Sum(conv_bn(8, 8, 3, 1, 1, groups=2), conv_bn(8, 8, 1, groups=4), nn.BatchNorm2d(8)), 3, 8),
    "depthwise+identity": (Sum(conv_bn(8, 8, 3, 1, 1, groups=8), conv_bn(8, 8, 1, groups=8), nn.BatchNorm2d(8)), 3, 8),
    "dense+depthwise": (Sum(conv_bn(8, 8, 3, 1, 1), conv_bn(8, 8, 3, 1, 1, groups=8)), 2, 8),
    "odd-kernels-5+3+1": (Sum(conv_bn(4, 6, 5, 1, 2), conv_bn(4, 6, 3, 1, 1), conv_bn(4, 6, 1)), 3, 4),
    "acnet-3x3+3x1+1x3": (Sum(conv_bn(4, 6, 3, 1, 1), conv_bn(4, 6, (3, 1), 1, (1, 0)),
                              conv_bn(4, 6, (1, 3), 1, (0, 1))), 3, 4),
    "acnet-stride-2": (Sum(conv_bn(4, 6, 3, 2, 1), conv_bn(4, 6, (3, 1), 2, (1, 0)),
                           conv_bn(4, 6, (1, 3), 2, (0, 1))), 3, 4),
    "non-square-3x5+1x1": (Sum(conv_bn(4, 6, (3, 5), 1, (1, 2)), conv_bn(4, 6, 1)), 2, 4),
    "avg-pool-branch": (Sum(conv_bn(6, 6, 3, 1, 1), nn.Sequential(nn.AvgPool2d(3, 1, 1), nn.BatchNorm2d(6))), 2, 6),
    "raw-identity": (Sum(conv_bn(6, 6, 3, 1, 1, bn=False), None), 2, 6),
    "dilation-2+1x1": (Sum(conv_bn(4, 6, 3, 1, 2, dilation=2), conv_bn(4, 6, 1)), 2, 4),
    "no-bn": (Sum(conv_bn(4, 6, 3, 1, 1, bn=False), conv_bn(4, 6, 1, bn=False)), 2, 4),
}


@pytest.mark.parametrize("case", PARALLEL)
def test_parallel_branches_become_one_conv(case):
    module, branches, cin = PARALLEL[case]
    graph, stats = reparam(module, 2, cin, 9, 10)
    assert stats["parallel"] == 1 and stats["parallel.branches"] == branches and stats["refused"] == 0
    assert list(ops(graph)) == ["conv"] and len(graph.nodes) == 1


def test_merged_conv_keeps_groups_and_largest_kernel():
    graph, _ = reparam(PARALLEL["depthwise+identity"][0], 1, 8, 6, 6)
    (conv,) = graph.nodes
    assert conv.attrs["groups"] == 8 and conv.inputs[1].shape == (8, 1, 3, 3)
    graph, _ = reparam(PARALLEL["dense+depthwise"][0], 1, 8, 6, 6)
    assert graph.nodes[0].attrs["groups"] == 1
    graph, _ = reparam(REFUSED["more-macs"][0], 1, 4, 12, 12, pipeline="fold-bn,reparam{grow=true},dce")
    assert graph.nodes[0].attrs["dilation"] == (2, 2) and graph.nodes[0].inputs[1].shape[2:] == (5, 5)


def test_1d_and_3d_branches():
    module = Sum(nn.Sequential(nn.Conv1d(4, 6, 5, padding=2), nn.BatchNorm1d(6)), nn.Conv1d(4, 6, 1))
    graph, stats = reparam(module, 2, 4, 16)
    assert stats["parallel"] == 1 and list(ops(graph)) == ["conv"]
    module = Sum(nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.BatchNorm3d(4)), nn.Conv3d(3, 4, 1),
                 nn.Sequential(nn.Conv3d(3, 4, (1, 3, 1), padding=(0, 1, 0)), nn.BatchNorm3d(4)))
    graph, stats = reparam(module, 2, 3, 5, 6, 7)
    assert stats["parallel.branches"] == 3 and list(ops(graph)) == ["conv"]


def test_constant_in_the_sum_joins_the_bias():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = conv_bn(4, 6, 3, 1, 1), conv_bn(4, 6, 1)
            self.register_buffer("shift", torch.randn(1, 6, 1, 1))

        def forward(self, x):
            return self.a(x) + 0 + self.b(x) + self.shift

    graph, stats = reparam(M(), 2, 4, 8, 8)
    assert list(ops(graph)) == ["conv"]


def test_summands_on_other_inputs_stay():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = conv_bn(4, 4, 3, 1, 1), conv_bn(4, 4, 1), conv_bn(4, 4, 3, 1, 1)

        def forward(self, x):
            y = torch.relu(self.c(x))
            return self.a(x) + y + self.b(x)

    graph, stats = reparam(M(), 2, 4, 8, 8)
    assert stats["parallel"] == 1 and ops(graph) == Counter(conv=2, relu=1, add=1)


REFUSED = {
    # 1x1 stride 2 (taps at 0) and 2x2 stride 2 (taps at 0, 1): same output size, other centres
    "misaligned-centers": (Sum(conv_bn(4, 6, 2, 2, 0), conv_bn(4, 6, 1, 2)), (2, 4, 8, 8)),
    # 1x1 stride 2 and 5x5 stride 1 (no padding) both give 4x4 from 8x8
    "stride-mismatch": (Sum(conv_bn(4, 6, 1, 2), conv_bn(4, 6, 5)), (2, 4, 8, 8)),
    "more-macs": (Sum(conv_bn(4, 6, 3, 1, 2, dilation=2), conv_bn(4, 6, 3, 1, 4, dilation=4)), (1, 4, 12, 12)),
    # an average that leaves the padding out divides by a position-dependent count: no kernel
    "avg-pool-excludes-padding": (Sum(conv_bn(4, 4, 3, 2, 1), seq(nn.AvgPool2d(3, 2, 1, count_include_pad=False),
                                                                  nn.BatchNorm2d(4))), (2, 4, 9, 9)),
}


@pytest.mark.parametrize("reason", REFUSED)
def test_parallel_refusals_are_counted_and_exact(reason):
    module, shape = REFUSED[reason]
    graph, stats = reparam(module, *shape)
    assert "parallel" not in stats and stats[f"refused.parallel.{reason}"] == 1 and ops(graph)["add"] == 1


# ---- sequential --------------------------------------------------------------------------------
SEQUENTIAL = {
    # DBB: the 1x1 pads (its border is then BN(0), what BNAndPad writes), the kxk does not
    "dbb-1x1(pad)-bn-3x3-bn": seq(nn.Conv2d(6, 6, 1, padding=1, bias=False), nn.BatchNorm2d(6),
                                  nn.Conv2d(6, 8, 3, bias=False), nn.BatchNorm2d(8)),
    "1x1(no bias)-3x3(pad)": seq(nn.Conv2d(4, 8, 1, bias=False), nn.Conv2d(8, 8, 3, padding=1)),
    "3x3-1x1": seq(nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Conv2d(8, 6, 1)),
    "3x3(stride 2)-1x1": seq(nn.Conv2d(4, 8, 3, 2, 1), nn.Conv2d(8, 6, 1)),
    "grouped": seq(nn.Conv2d(8, 8, 1, padding=1, groups=2), nn.BatchNorm2d(8),
                   nn.Conv2d(8, 8, 3, 2, groups=2)),
    "1x1-pad-node-3x3": seq(nn.Conv2d(4, 8, 1, bias=False), nn.ZeroPad2d(1), nn.Conv2d(8, 8, 3)),
    "1x1-1x1": seq(nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 1, stride=2)),
}


@pytest.mark.parametrize("case", SEQUENTIAL)
def test_sequential_convs_merge(case):
    module = SEQUENTIAL[case]
    graph, stats = reparam(module, 2, module[0].in_channels, 9, 9)
    assert stats["sequential"] == 1 and list(ops(graph)) == ["conv"]


@pytest.mark.parametrize("second", ["depthwise x2", "avg-pool"])
def test_sequential_into_a_depthwise_second_layer(second):
    """A depthwise second layer (here with a channel multiplier) composes without densifying;
    the result costs more than the pair, so only `grow` merges it on its own."""
    last, channels = (nn.Conv2d(4, 8, 3, groups=4), 8) if second == "depthwise x2" else (nn.AvgPool2d(3, 2), 4)
    module = seq(nn.Conv2d(4, 4, 1, padding=1, groups=2), nn.BatchNorm2d(4), last, nn.BatchNorm2d(channels))
    graph, stats = reparam(module, 2, 4, 9, 9, pipeline="fold-bn,reparam{grow=true}")
    assert stats["sequential"] == 1 and list(ops(graph)) == ["conv"]
    assert graph.nodes[0].attrs["groups"] == 2 and graph.nodes[0].outputs[0].shape[1] == channels


SEQUENTIAL_REFUSED = {
    # a zero border where the merged conv would see the 1x1's (BN-shifted) bias
    "padded-bias": seq(nn.Conv2d(4, 8, 1, bias=False), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3, padding=1)),
    "strided-first": seq(nn.Conv2d(4, 8, 1, stride=2), nn.Conv2d(8, 8, 3, padding=1)),
    "both-spatial": seq(nn.Conv2d(4, 8, 3), nn.Conv2d(8, 8, 3)),
    "more-macs": seq(nn.Conv2d(8, 2, 1), nn.Conv2d(2, 8, 3)),   # a bottleneck is cheaper as two
    "non-zero-pad": seq(nn.Conv2d(4, 8, 1), nn.ReflectionPad2d(1), nn.Conv2d(8, 8, 3)),
    "more-params": seq(nn.Conv2d(8, 8, 1), nn.AvgPool2d(2, 2)),  # a DenseNet transition: 4x the weights
}


@pytest.mark.parametrize("reason", SEQUENTIAL_REFUSED)
def test_sequential_refusals(reason):
    module = SEQUENTIAL_REFUSED[reason]
    graph, stats = reparam(module, 2, module[0].in_channels, 9, 9)
    assert stats[f"refused.sequential.{reason}"] == 1 and "sequential" not in stats
    assert sum(ops(graph)[op] for op in ("conv", "avg_pool")) == 2


def test_1x1_then_avg_pool_merges_only_inside_a_sum():
    alone = seq(nn.Conv2d(4, 6, 1, padding=1, bias=False), nn.BatchNorm2d(6), nn.AvgPool2d(3, 1), nn.BatchNorm2d(6))
    graph, stats = reparam(alone, 2, 4, 8, 8)
    assert stats["refused.sequential.more-macs"] == 1
    dbb_avg = Sum(conv_bn(4, 6, 3, 2, 1), seq(nn.Conv2d(4, 6, 1, padding=1, bias=False), nn.BatchNorm2d(6),
                                              nn.AvgPool2d(3, 2), nn.BatchNorm2d(6)))
    graph, stats = reparam(dbb_avg, 2, 4, 8, 8)
    assert stats["sequential"] == 1 and stats["parallel"] == 1 and list(ops(graph)) == ["conv"]


# ---- concat ------------------------------------------------------------------------------------
def test_concatenated_convs_merge():
    module = Cat(conv_bn(4, 3, 3, 1, 1), conv_bn(4, 5, 3, 1, 1, bn=False), conv_bn(4, 2, 3, 1, 1))
    graph, stats = reparam(module, 2, 4, 8, 8)
    assert stats["concat"] == 1 and stats["concat.convs"] == 3 and list(ops(graph)) == ["conv"]
    assert graph.nodes[0].outputs[0].shape[1] == 10


def test_concat_runs_around_other_inputs():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = conv_bn(4, 3, 3, 1, 1), conv_bn(4, 3, 3, 1, 1), conv_bn(4, 3, 3, 1, 1)

        def forward(self, x):
            return torch.cat([self.a(x), self.b(x), torch.relu(x), self.c(x)], 1)

    graph, stats = reparam(M(), 2, 4, 8, 8)
    assert stats["concat"] == 1 and ops(graph) == Counter(conv=2, relu=1, concat=1)


def test_concat_refusals_and_grow():
    mixed = Cat(conv_bn(4, 3, 1), conv_bn(4, 3, 3, 1, 1))
    graph, stats = reparam(mixed, 2, 4, 8, 8)
    assert stats["refused.concat.more-macs"] == 1 and ops(graph)["conv"] == 2
    graph, stats = reparam(mixed, 2, 4, 8, 8, pipeline="fold-bn,reparam{grow=true}")
    assert stats["concat"] == 1 and list(ops(graph)) == ["conv"]
    grouped = Cat(conv_bn(4, 4, 3, 1, 1, groups=2), conv_bn(4, 4, 3, 1, 1, groups=2))
    graph, stats = reparam(grouped, 2, 4, 8, 8)
    assert stats["refused.concat.grouped"] == 1 and ops(graph)["conv"] == 2


# ---- linear ------------------------------------------------------------------------------------
def test_linear_chain_with_bn_between_merges():
    module = seq(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Linear(16, 4))
    graph, stats = reparam(module, 5, 8)
    assert stats["linear-chain"] == 1 and list(ops(graph)) == ["linear"]


def test_linear_bottleneck_is_refused():
    graph, stats = reparam(seq(nn.Linear(16, 2), nn.Linear(2, 16)), 5, 16)
    assert stats["refused.linear-chain.more-macs"] == 1 and ops(graph)["linear"] == 2


def test_summed_linear_branches_merge():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8, bias=False)

        def forward(self, x):
            return self.a(x) + x + self.b(x) + 1.5

    graph, stats = reparam(M(), 3, 5, 8)
    assert stats["linear-sum"] == 1 and stats["linear-sum.branches"] == 3 and list(ops(graph)) == ["linear"]


# ---- options, manager, errors ----------------------------------------------------------------
def test_options_switch_families_off():
    module = PARALLEL["repvgg-3x3+1x1+identity-bn"][0]
    graph, stats = reparam(module, 2, 8, 6, 6, pipeline="fold-bn,reparam{branches=false},dce")
    assert "parallel" not in stats and ops(graph)["add"] == 2
    text = "reparam{branches=false,concat=false,grow=true}"
    assert str(parse_pipeline(text)) == text
    assert parse_pipeline("reparam").passes[0].linear is True


def test_reparam_alone_handles_bn_itself():
    graph, stats = reparam(PARALLEL["repvgg-3x3+1x1+identity-bn"][0], 2, 8, 6, 6, pipeline="reparam")
    assert list(ops(graph)) == ["conv"]


def test_pass_manager_stops_an_exact_pass_that_changes_outputs(monkeypatch):
    """check_equivalence guards the rewrites: a kernel merge that is off by a bias is stopped."""
    from dataclasses import replace

    from compiler.frontend import import_model
    from passes.reparam import merge

    module = randomize_batchnorm(PARALLEL["stride-2"][0]).eval()
    x = torch.randn(2, 4, 8, 8)
    manager = PassManager(parse_pipeline("fold-bn,reparam").passes, check_equivalence=True,
                          equivalence_inputs=(x,))
    graph = import_model(module, (x,))
    records = manager.run(graph)
    assert records[1].max_rel_diff <= TOLERANCE and records[1].stats["parallel"] == 1

    real = merge.merge_sum
    monkeypatch.setattr("passes.reparam.parallel.merge_sum", lambda ks: replace(real(ks), bias=real(ks).bias + 1))
    with pytest.raises(PassFailure, match="exact pass 'reparam' changed the outputs"):
        manager.run(import_model(module, (x,)))


def test_batchnorm_in_training_mode_is_refused():
    module = Sum(conv_bn(8, 8, 3, 1, 1), conv_bn(8, 8, 1), nn.BatchNorm2d(8)).train()
    with pytest.raises(NNForgeError, match=r"BatchNorm2d 'branches\.0\.1' is in training mode"):
        compile(module, (torch.randn(2, 8, 6, 6),), pipeline=PIPELINE)


# ---- whole models ------------------------------------------------------------------------------
def _adds_of_convs(graph) -> list:
    """Adds summing two branches computed from one input (what reparam must leave none of)."""
    bases = []
    for node in graph.nodes:
        if node.op == "add":
            producers = [v.producer for v in node.inputs]
            if all(p is not None and p.op == "conv" for p in producers) and \
                    producers[0].inputs[0] is producers[1].inputs[0]:
                bases.append(node)
    return bases


ZOO = {  # name -> (merged blocks, convs left, adds left)
    "repvgg": (7, 7, 0),
    "acnet": (6, 6, 0),
    "mobileone": (9, 9, 0),
    "dbb": (17, 20, 8),   # 17 DBBs (stem + 16) -> 17 convs, plus 3 downsample convs; 8 residual adds
}


@pytest.mark.parametrize("name", ZOO)
def test_zoo_multi_branch_models_collapse_to_plain_conv_stacks(name):
    blocks, convs, adds = ZOO[name]
    zoo = build(name)
    before = {k: v.clone() for k, v in zoo.module.state_dict().items()}
    with torch.no_grad():
        want = zoo.module(*zoo.example_inputs)
    result = compile(zoo.module, zoo.example_inputs, pipeline=PIPELINE, target="onnx", check_equivalence=True)
    (got,) = interpret(result.graph, *zoo.example_inputs)
    assert scaled_diff(got, want) <= TOLERANCE
    (onnx_out,) = result.artifact.run(*zoo.example_inputs)
    torch.testing.assert_close(onnx_out, want, rtol=1e-4, atol=1e-5)
    assert all(p.max_rel_diff <= TOLERANCE for p in result.report.passes)
    record = next(p for p in result.report.passes if p.name == "reparam")
    assert record.stats["parallel"] == blocks and record.stats["refused"] == 0
    counts = ops(result.graph)
    assert counts["conv"] == convs and counts["add"] == adds and "batch_norm" not in counts
    assert not _adds_of_convs(result.graph)
    assert record.nodes_after < record.nodes_before and record.params_after < record.params_before
    for k, v in zoo.module.state_dict().items():
        assert torch.equal(v, before[k])


def test_dbb_branches_go_through_sequential_merges():
    zoo = build("dbb")
    result = compile(zoo.module, zoo.example_inputs, pipeline=PIPELINE)
    stats = next(p for p in result.report.passes if p.name == "reparam").stats
    assert stats["sequential"] == 34 and stats["parallel.branches"] == 68   # 17 blocks x (2, 4)


def test_weights_computed_from_parameters_need_fold_constants_first():
    """DBB's identity-based 1x1 computes its weight (param + identity buffer) in the graph:
    without fold-constants that branch is refused and the other three still merge."""
    from tests.zoo.dbb import DiverseBranchBlock

    block = DiverseBranchBlock(4, 6, 3, 2)
    _, stats = reparam(block, 2, 4, 8, 8, pipeline="fold-bn,reparam,dce")
    assert stats["refused.sequential.non-constant-weight"] == 1 and stats["parallel.branches"] == 3
    graph, stats = reparam(block, 2, 4, 8, 8)
    assert stats["sequential"] == 2 and stats["parallel.branches"] == 4 and list(ops(graph)) == ["conv"]


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2"])
def test_models_without_branches_stay_exact(name):
    zoo = build(name, **({"width": 16} if name == "resnet18" else {"width_mult": 0.5}))
    result = compile(zoo.module, zoo.example_inputs, pipeline=PIPELINE, check_equivalence=True)
    assert all(p.max_rel_diff <= TOLERANCE for p in result.report.passes)
    stats = next(p for p in result.report.passes if p.name == "reparam").stats
    assert "parallel" not in stats and "sequential" not in stats


# ---- the same models from ONNX --------------------------------------------------------------
def _onnx_frontend_reason() -> str | None:
    try:
        import frontends.onnx  # noqa: F401  (imported for its availability)
    except Exception as exc:  # not landed yet, or broken while it is being written
        return f"frontends.onnx is not importable ({type(exc).__name__}: {exc})"
    return None


@pytest.mark.parametrize("name", ["repvgg", "acnet", "mobileone", "dbb"])
def test_onnx_imported_models_collapse_too(name, tmp_path):
    reason = _onnx_frontend_reason()
    if reason:
        pytest.skip(reason)
    zoo = build(name)
    (x,) = zoo.example_inputs
    path = tmp_path / f"{name}.onnx"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(zoo.module, (x,), str(path), dynamo=False)
    with torch.no_grad():
        want = zoo.module(x)
    result = compile(str(path), input_shapes=[tuple(x.shape)], pipeline=PIPELINE, check_equivalence=True)
    (got,) = interpret(result.graph, x)
    assert scaled_diff(got, want) <= TOLERANCE
    assert not _adds_of_convs(result.graph)
    assert ops(result.graph)["conv"] == ZOO[name][1]

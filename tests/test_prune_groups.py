"""Dependency analysis of `prune`: the coupling groups, and exactness for every group kind.

The exactness check (tests/prune_util.zero_then_prune): zero the weights a random half of one
group occupies in the original model, take the outputs, prune exactly those units, and the
outputs must be identical (layer norms are compared against a reference that normalizes over the
kept channels, since removing channels changes their statistics by design). A wrong concat
offset, split range, flatten block, head mapping or group count changes the outputs.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from compiler.frontend import import_model
from passes.prune import analyze, describe_groups
from tests.prune_util import group_of, positions, zero_then_prune
from tests.zoo.bert import BertSelfAttention
from tests.zoo.gqa import GQAttention
from tests.zoo.vit import Attention


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


def randomize(model: nn.Module) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, eval mode."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            if getattr(m, "running_mean", None) is not None:
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            if m.weight is not None:
                with torch.no_grad():
                    m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
    return model.eval()


# ---- models, one per group kind ---------------------------------------------------------------
class ConvChain(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = conv_bn(3, 8), conv_bn(8, 16)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        return self.head(self.b(self.a(x)))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 16)
        self.c1, self.c2 = conv_bn(16, 16), nn.Sequential(nn.Conv2d(16, 16, 3, 1, 1), nn.BatchNorm2d(16))
        self.down = nn.Sequential(nn.Conv2d(16, 24, 1, 2), nn.BatchNorm2d(24))
        self.c3 = nn.Sequential(nn.Conv2d(16, 24, 3, 2, 1), nn.BatchNorm2d(24))
        self.head = nn.Conv2d(24, 4, 1)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.c2(self.c1(x)))
        return self.head(torch.relu(self.down(x) + self.c3(x)))


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = conv_bn(3, 8), conv_bn(3, 12)
        self.head = nn.Conv2d(8 + 12 + 8, 4, 1)

    def forward(self, x):
        a = self.a(x)
        return self.head(torch.cat([a, self.b(x), a * 0.5], 1))


class SplitChunk(nn.Module):
    """C2f-style: chunk, a bottleneck with a shortcut on one half, concat; and an uneven split."""

    def __init__(self):
        super().__init__()
        self.cv1 = conv_bn(3, 16, 1)
        self.m = conv_bn(8, 8)
        self.cv2 = conv_bn(24, 10, 1)
        self.out = nn.Conv2d(4, 4, 1)
        self.out2 = nn.Conv2d(6, 4, 1)

    def forward(self, x):
        a, b = self.cv1(x).chunk(2, 1)
        y = self.cv2(torch.cat([a, b, b + self.m(b)], 1))
        p, q = torch.split(y, [4, 6], dim=1)
        return self.out(p) + self.out2(q)


class FlattenLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = conv_bn(3, 8, stride=2)
        self.fc1 = nn.Linear(8 * 4 * 4, 12)
        self.fc2 = nn.Linear(12, 5)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(torch.flatten(self.features(x), 1))))


class ChannelsLast(nn.Module):
    """ConvNeXt-style: permute to channels-last, linear over channels, LayerNorm, permute back."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.norm = nn.LayerNorm(16)
        self.fc = nn.Linear(16, 24)
        self.fc2 = nn.Linear(24, 16)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        y = self.fc2(torch.nn.functional.gelu(self.fc(self.norm(self.conv(x).permute(0, 2, 3, 1)))))
        return self.head(y.permute(0, 3, 1, 2))


class Depthwise(nn.Module):
    def __init__(self):
        super().__init__()
        self.expand = conv_bn(3, 16, 1)
        self.dw = conv_bn(16, 16, 3, groups=16)
        self.dw2 = conv_bn(16, 32, 3, groups=16)        # depthwise with multiplier 2
        self.project = nn.Sequential(nn.Conv2d(32, 8, 1, bias=False), nn.BatchNorm2d(8))

    def forward(self, x):
        return self.project(self.dw2(self.dw(self.expand(x))))


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = conv_bn(3, 16, 1)
        self.g = conv_bn(16, 24, 3, groups=4)
        self.head = nn.Conv2d(24, 4, 1)

    def forward(self, x):
        return self.head(self.g(self.a(x)))


class GroupNormNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.gn = nn.GroupNorm(4, 16)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        return self.head(torch.relu(self.gn(self.conv(x))))


class TransposeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = conv_bn(3, 8)
        self.up = nn.ConvTranspose2d(8, 6, 2, stride=2)
        self.bn = nn.BatchNorm2d(6)
        self.head = nn.Conv2d(6, 2, 1)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.up(self.a(x)))))


class SqueezeExcite(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = conv_bn(3, 16)
        self.fc1, self.fc2 = nn.Linear(16, 4), nn.Linear(4, 16)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        x = self.conv(x)
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3))))))
        return self.head(x * s.view(x.shape[0], 16, 1, 1))


class Sliced(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = conv_bn(3, 16)
        self.a, self.b = nn.Conv2d(6, 4, 1), nn.Conv2d(10, 4, 1)

    def forward(self, x):
        x = self.conv(x)
        return self.a(x[:, :6]) + self.b(x[:, 6:])


class MlpLayerNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.norm, self.fc2 = nn.Linear(10, 32), nn.LayerNorm(32), nn.Linear(32, 5)
        self.bn_fc, self.bn = nn.Linear(10, 12), nn.BatchNorm1d(12)
        self.fc3 = nn.Linear(12, 5)

    def forward(self, x):
        return self.fc2(torch.nn.functional.gelu(self.norm(self.fc1(x)))) + self.fc3(torch.relu(self.bn(self.bn_fc(x))))


class Heads(nn.Module):
    """ViT fused-qkv attention, BERT separate q/k/v attention, GQA attention, each with a residual."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.inp = nn.Linear(8, 32)
        if kind == "vit":
            self.attn = Attention(32, num_heads=4)
        elif kind == "bert":
            self.attn, self.out = BertSelfAttention(32, num_heads=4, dropout=0.0), nn.Linear(32, 32)
        elif kind == "gqa":
            self.attn = GQAttention(32, num_heads=8, num_kv_heads=4)
        else:  # multi-query: one kv head shared by every query head
            self.attn = GQAttention(32, num_heads=8, num_kv_heads=1)
        self.head = nn.Linear(32, 3)

    def forward(self, x):
        h = self.inp(x)
        if self.kind == "vit":
            a = self.attn(h)
        elif self.kind == "bert":
            a = self.out(self.attn(h, torch.zeros(1, 1, 1, x.shape[1])))
        else:
            a = self.attn(h, torch.zeros(1, 1, 1, x.shape[1]))
        return self.head(h + a)


class Embed(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(50, 16)
        self.pos = nn.Embedding(8, 16)
        self.fc = nn.Linear(16, 6)

    def forward(self, ids):
        return self.fc(self.tok(ids) + self.pos.weight).mean(1)


IMAGE = (2, 3, 8, 8)
# kind -> (model, input, weight whose dim-0 indices select the group under test, dim)
CASES = {
    "conv-chain": (ConvChain, IMAGE, "a.0.weight", 0),
    "residual-add": (Residual, IMAGE, "stem.0.weight", 0),
    "residual-add-downsample": (Residual, IMAGE, "down.0.weight", 0),
    "concat-offsets": (Concat, IMAGE, "a.0.weight", 0),
    "concat-second": (Concat, IMAGE, "b.0.weight", 0),
    "chunk-first-half": (SplitChunk, IMAGE, "cv2.0.weight", 1),
    "chunk-second-half": (SplitChunk, IMAGE, "m.0.weight", 1),
    "split-uneven": (SplitChunk, IMAGE, "cv2.0.weight", 0),
    "flatten-linear": (FlattenLinear, IMAGE, "features.0.weight", 0),
    "linear-chain": (FlattenLinear, IMAGE, "fc1.weight", 0),
    "channels-last-layernorm": (ChannelsLast, IMAGE, "conv.weight", 0),
    "channels-last-linear": (ChannelsLast, IMAGE, "fc.weight", 0),
    "depthwise": (Depthwise, IMAGE, "expand.0.weight", 0),
    "depthwise-multiplier": (Depthwise, IMAGE, "dw2.0.weight", 0),
    "grouped-conv": (Grouped, IMAGE, "g.0.weight", 0),
    "grouped-conv-input": (Grouped, IMAGE, "a.0.weight", 0),
    "group-norm": (GroupNormNet, IMAGE, "conv.weight", 0),
    "conv-transpose": (TransposeNet, IMAGE, "up.weight", 1),
    "conv-transpose-input": (TransposeNet, IMAGE, "a.0.weight", 0),
    "squeeze-excite": (SqueezeExcite, IMAGE, "conv.0.weight", 0),
    "slice": (Sliced, IMAGE, "conv.0.weight", 0),
    "layer-norm": (MlpLayerNorm, (4, 10), "fc1.weight", 0),
    "batch-norm-1d": (MlpLayerNorm, (4, 10), "bn_fc.weight", 0),
    "heads-vit": (lambda: Heads("vit"), (2, 5, 8), "attn.qkv.weight", 0),
    "heads-bert": (lambda: Heads("bert"), (2, 5, 8), "attn.query.weight", 0),
    "heads-gqa": (lambda: Heads("gqa"), (2, 5, 8), "attn.k_proj.weight", 0),
    "heads-mqa": (lambda: Heads("mqa"), (2, 5, 8), "attn.q_proj.weight", 0),
    "residual-stream": (lambda: Heads("vit"), (2, 5, 8), "inp.weight", 0),
    "embedding": (Embed, None, "tok.weight", 1),
}


def _build(kind: str):
    factory, shape, weight, dim = CASES[kind]
    torch.manual_seed(0)
    model = randomize(factory())
    if shape is None:
        inputs = (torch.randint(0, 50, (3, 8)),)
    else:
        inputs = (torch.randn(shape),)
    return model, inputs, weight, dim


@pytest.mark.parametrize("kind", list(CASES))
def test_zero_then_prune_is_exact(kind):
    model, inputs, weight, dim = _build(kind)
    graph = import_model(model, inputs)
    analysis = analyze(graph)
    group = group_of(analysis, weight, dim)
    assert group.prunable
    zero_then_prune(graph, inputs, group, analysis)


# ---- what the groups contain ------------------------------------------------------------------
def _group(kind):
    model, inputs, weight, dim = _build(kind)
    graph = import_model(model, inputs)
    a = analyze(graph)
    return a, group_of(a, weight, dim), graph


def _where(a, group, name, dim):
    return positions(a, group.units, a.graph.weights[name], dim)


def test_concat_offsets_map_to_every_copy():
    a, g, _ = _group("concat-offsets")
    assert g.size == 8
    assert _where(a, g, "head.weight", 1) == list(range(8)) + list(range(20, 28))
    a, g, _ = _group("concat-second")
    assert _where(a, g, "head.weight", 1) == list(range(8, 20))


def test_chunk_halves_are_separate_groups_with_their_consumers():
    a, first, _ = _group("chunk-first-half")
    assert _where(a, first, "cv1.0.weight", 0) == list(range(8))
    assert _where(a, first, "cv2.0.weight", 1) == list(range(8))
    a, second, _ = _group("chunk-second-half")
    assert _where(a, second, "cv1.0.weight", 0) == list(range(8, 16))
    assert _where(a, second, "cv2.0.weight", 1) == list(range(8, 24))  # b and b + m(b)
    assert _where(a, second, "m.0.weight", 1) == list(range(8))


def test_flatten_into_linear_blocks_of_spatial_positions():
    a, g, _ = _group("flatten-linear")
    assert g.size == 8
    assert _where(a, g, "fc1.weight", 1) == list(range(128))  # 8 channels x 16 positions
    unit = g.units[3:4]
    assert positions(a, unit, a.graph.weights["fc1.weight"], 1) == list(range(48, 64))


def test_heads_are_whole_units():
    a, g, _ = _group("heads-vit")
    assert g.size == 4  # heads, not 32 channels
    rows = positions(a, g.units[1:2], a.graph.weights["attn.qkv.weight"], 0)
    assert rows == [i + 8 + s * 32 for s in range(3) for i in range(8)]  # q, k and v of head 1
    assert positions(a, g.units[1:2], a.graph.weights["attn.proj.weight"], 1) == list(range(8, 16))
    a, g, _ = _group("heads-bert")
    assert g.size == 4


def test_grouped_query_attention_prunes_kv_heads_with_their_query_heads():
    a, g, _ = _group("heads-gqa")
    assert g.size == 4  # 4 kv heads, each shared by 2 of the 8 query heads
    q = a.graph.weights["attn.q_proj.weight"]
    assert positions(a, g.units[1:2], q, 0) == list(range(8, 16))  # query heads 2 and 3 (head_dim 4)
    assert positions(a, g.units[1:2], a.graph.weights["attn.k_proj.weight"], 0) == list(range(4, 8))


def test_multi_query_attention_prunes_query_heads():
    a, g, _ = _group("heads-mqa")
    assert g.size == 8  # the single kv head stays, query heads go one by one
    assert positions(a, g.units[2:3], a.graph.weights["attn.q_proj.weight"], 0) == list(range(8, 12))
    assert positions(a, g.units, a.graph.weights["attn.k_proj.weight"], 0) == []


def test_grouped_conv_and_group_norm_prune_whole_groups():
    a, g, _ = _group("grouped-conv")
    assert g.size == 4
    a, g, _ = _group("group-norm")
    assert g.size == 4
    assert positions(a, g.units[2:3], a.graph.weights["conv.weight"], 0) == list(range(8, 12))


def test_depthwise_couples_input_and_output_channels():
    a, g, _ = _group("depthwise")
    assert g.size == 16
    assert _where(a, g, "dw.0.weight", 0) == list(range(16))
    assert _where(a, g, "dw2.0.weight", 0) == list(range(32))  # multiplier 2: channel c -> 2c, 2c+1


def test_outputs_and_inputs_are_never_pruned():
    a, g, graph = _group("conv-chain")
    head = graph.weights["head.weight"]
    assert a.site_of.get((head, 0)) is None or (a.sites[a.site_of[(head, 0)]].units < 0).all()
    assert all(a.site_of.get((v, d)) is None for v in graph.inputs for d in range(v.rank))


def test_unknown_op_keeps_its_channels():
    model, inputs, _, _ = _build("conv-chain")
    graph = import_model(model, inputs)
    node = next(n for n in graph.nodes if n.op == "relu")
    node.op = "mystery"  # no pruning rule: every channel it reads must be kept
    a = analyze(graph)
    site = a.sites[a.site_of[(node.inputs[0], 1)]]
    assert (site.units < 0).all()
    assert a.pinned


def test_describe_groups_is_readable():
    _, _, graph = _group("residual-add")
    text = describe_groups(graph)
    assert "prunable group" in text and "via   add" in text
    assert "stem.0.weight" in text and "graph output" in text
    _, _, graph = _group("heads-vit")
    assert "4 heads" in describe_groups(graph)


def test_analysis_is_linear_in_graph_size():
    import time

    def chain(n):
        layers = []
        for _ in range(n):
            layers += [nn.Linear(16, 16), nn.ReLU()]
        model = nn.Sequential(*layers).eval()
        return import_model(model, (torch.randn(2, 16),))

    small, big = chain(100), chain(800)
    t = []
    for g in (small, big):
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            a = analyze(g)
            best = min(best, time.perf_counter() - start)
        t.append(best)
    assert sum(grp.prunable for grp in a.groups) == 799
    assert t[1] / t[0] < 8 * 2.5, t  # 8x the layers: linear is ~8x, quadratic would be ~64x

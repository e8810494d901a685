"""The torch.fx frontend: what it imports, how, and what it refuses.

Every import is checked the same way: the IR verifies, and interpreting it reproduces the
module's own outputs. Refusals are FrontendErrors that name the operation and where the model
uses it.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compiler.errors import FrontendError
from compiler.frontend import import_model
from compiler.interpreter import interpret
from compiler.printer import print_graph
from compiler.verifier import verify
from frontends.torch_fx import import_module
from tests.zoo import NAMES, build

THIS_FILE = "test_frontend_torch_fx.py"


def _flat(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if out is None:
        return []
    if isinstance(out, dict):
        return [t for v in out.values() for t in _flat(v)]
    return [t for o in out for t in _flat(o)]


def imported(module: nn.Module, *inputs: torch.Tensor):
    """Import `module`, verify the IR and check the IR's outputs against the module's."""
    module.eval()
    graph = import_module(module, inputs, None)
    verify(graph)
    with torch.no_grad():
        expected = _flat(module(*inputs))
    got = interpret(graph, *inputs)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.shape == b.shape and a.dtype == b.dtype
        scale = max(1.0, float(b.abs().max())) if b.is_floating_point() and b.numel() else 1.0
        assert float((a.double() - b.double()).abs().max()) <= 1e-5 * scale
    return graph


def ops(graph) -> list[str]:
    return [n.op for n in graph.nodes]


class _Fn(nn.Module):
    def __init__(self, fn, modules: dict[str, nn.Module]):
        super().__init__()
        self.fn = fn
        for name, m in modules.items():
            self.add_module(name, m)


class _Fn1(_Fn):
    def forward(self, x):
        return self.fn(self, x)


class _Fn2(_Fn):
    def forward(self, x, y):
        return self.fn(self, x, y)


def Fn(fn, **modules: nn.Module) -> nn.Module:
    """A module whose forward(x) or forward(x, y) is `fn(self, ...)`, so tests read as one-liners."""
    arity = fn.__code__.co_argcount - 1
    return (_Fn1 if arity == 1 else _Fn2)(fn, modules)


# ---- the reference zoo ------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_zoo_model_imports_exactly(name):
    zm = build(name)
    graph = imported(zm.module, *zm.example_inputs)
    assert len(graph.inputs) == len(zm.example_inputs)
    assert graph.param_count() == sum(p.numel() for p in zm.module.parameters())


def test_registered_as_the_frontend_for_modules():
    zm = build("repvgg")
    graph = import_model(zm.module, zm.example_inputs)
    assert graph.name == "RepVGG" and ops(graph)[0] == "conv"


def test_resnet_ir_is_readable():
    zm = build("resnet18")
    text = print_graph(import_module(zm.module, zm.example_inputs, None), weights=False)
    assert "%layer1_0_conv1: f32[2,64,16,16] = conv(%maxpool, %layer1.0.conv1.weight, None)" in text
    assert "# layer1.0.conv1 (resnet.py:" in text
    assert "batch_norm" in text and "adaptive_avg_pool" in text and "linear" in text


# ---- inputs -------------------------------------------------------------------------------------
def test_input_shapes_make_float_random_inputs():
    graph = import_module(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), None, [(2, 4)])
    assert graph.inputs[0].shape == (2, 4) and graph.inputs[0].dtype == torch.float32
    assert import_module(nn.Linear(4, 3), None, (5, 4)).inputs[0].shape == (5, 4)  # one bare shape


def test_inputs_must_be_given_and_agree():
    m = nn.Linear(4, 3)
    with pytest.raises(FrontendError, match="example_inputs or input_shapes"):
        import_module(m, None, None)
    with pytest.raises(FrontendError, match="input_shapes says"):
        import_module(m, (torch.randn(2, 4),), [(3, 4)])
    with pytest.raises(FrontendError, match="takes 1..1 inputs, got 2"):
        import_module(m, (torch.randn(2, 4), torch.randn(2, 4)), None)


def test_integer_model_with_only_shapes_fails_clearly():
    zm = build("bert")
    with pytest.raises(FrontendError, match="example inputs failed") as err:
        import_module(zm.module, None, [tuple(t.shape) for t in zm.example_inputs])
    assert "integer inputs" in str(err.value)


# ---- static shape arithmetic ------------------------------------------------------------------
def test_shape_arithmetic_evaluates_at_import_time():
    def fwd(self, x):
        B, C, H, W = x.shape
        y = x.view(B, C, -1).mean(-1)                  # -> (B, C)
        return y.reshape(B * 2, C // 2) + x.size(1) + H // 2
    graph = imported(Fn(fwd), torch.randn(2, 4, 3, 5))
    assert ops(graph) == ["reshape", "reduce_mean", "reshape", "add", "add"]
    assert graph.nodes[0].attrs["shape"] == (2, 4, 15)


def test_python_scalars_follow_torch_promotion():
    def fwd(self, x, mask):
        ext = (1.0 - mask[:, None, None, :].to(x.dtype)) * -10000.0
        return x + ext, mask * 2, mask / 2, mask + 1.5, x.half() * 3
    graph = imported(Fn(fwd), torch.randn(2, 4, 3, 5), torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]]))
    consts = {w.name: w.data for w in graph.weights.values()}
    assert consts["sub.const"].dtype == torch.float32 and float(consts["sub.const"]) == 1.0
    assert consts["mul.const"].dtype == torch.float32 and float(consts["mul.const"]) == -10000.0
    assert consts["mul_1.const"].dtype == torch.int64      # int tensor * int scalar stays int64
    assert consts["truediv.const"].dtype == torch.float32  # int tensor / int scalar is float32
    assert consts["add_1.const"].dtype == torch.float32    # int tensor + float scalar is float32
    assert consts["mul_2.const"].dtype == torch.float16    # half tensor * int scalar stays half
    assert [v.dtype for v in graph.outputs] == [torch.float32, torch.int64, torch.float32, torch.float32,
                                                torch.float16]


def test_reversed_operators_and_torch_functions():
    def fwd(self, x):
        y = 2 * x - 1
        y = 3.0 / (1 + y.abs()) + (-y) ** 2
        y = torch.add(y, x, alpha=0.5) - torch.sub(x, 1, alpha=2)
        return torch.clamp(y, min=-1.0, max=1.0) + F.relu6(x) + F.hardtanh(x) + torch.rsqrt(x.abs() + 1)
    imported(Fn(fwd), torch.randn(3, 4))


# ---- indexing ------------------------------------------------------------------------------------
@pytest.mark.parametrize("index, expected_ops", [
    ((slice(None), 0), ["slice", "reshape"]),
    ((Ellipsis, slice(1, 3)), ["slice"]),
    ((slice(None), None), ["reshape"]),
    ((-1, slice(None), slice(-3, None, 2)), ["slice", "slice", "reshape"]),
    ((slice(None), slice(None), slice(None), slice(None)), []),
    ((0, Ellipsis, None, -2), ["slice", "slice", "reshape"]),
    ((slice(1, 100),), ["slice"]),
])
def test_getitem_lowers_to_slices_and_one_reshape(index, expected_ops):
    graph = imported(Fn(lambda self, x: x[index] * 1.0), torch.randn(2, 3, 4, 5))
    assert ops(graph) == expected_ops + ["mul"]
    for node in graph.nodes:
        if node.op == "slice":
            a = node.attrs
            assert 0 <= a["start"] <= a["end"] <= node.inputs[0].shape[a["dim"]] and a["step"] > 0


def test_advanced_and_reversed_indexing_are_refused():
    with pytest.raises(FrontendError, match="indexing a tensor with a tensor"):
        import_module(Fn(lambda self, x, i: x[i]), (torch.randn(4, 3), torch.tensor([0, 2])), None)
    with pytest.raises(FrontendError, match="step"):
        import_module(Fn(lambda self, x: x[::-1]), (torch.randn(4, 3),), None)


# ---- convolutions --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_conv_padding_modes(mode):
    conv = nn.Conv2d(3, 4, 3, padding=(1, 2), padding_mode=mode)
    graph = imported(conv, torch.randn(1, 3, 8, 8))
    if mode == "zeros":
        assert ops(graph) == ["conv"] and graph.nodes[0].attrs["padding"] == (1, 2)
    else:
        assert ops(graph) == ["pad", "conv"] and graph.nodes[1].attrs["padding"] == (0, 0)
        assert graph.nodes[0].attrs["mode"] == mode and graph.nodes[0].attrs["pads"] == (2, 2, 1, 1)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("kernel, dilation, expected_ops", [(3, 1, ["conv"]), (4, 1, ["pad", "conv"]),
                                                            ((2, 3), 2, ["conv"])])
def test_conv_same_and_valid_padding(kernel, dilation, expected_ops):
    def fwd(self, x):
        return self.same(x) + F.conv2d(x, self.same.weight, padding="same", dilation=dilation)
    same = nn.Conv2d(3, 3, kernel, padding="same", dilation=dilation, bias=False)
    graph = imported(Fn(fwd, same=same), torch.randn(1, 3, 9, 9))
    assert ops(graph) == expected_ops * 2 + ["add"]
    imported(nn.Conv1d(3, 2, 3, padding="valid"), torch.randn(1, 3, 9))


def test_conv1d_grouped_transposed_and_functional_weights():
    def fwd(self, x):
        y = self.up(self.dw(x))
        return F.conv1d(y, self.w, self.b, stride=2, padding=1, groups=2), self.up2(y, output_size=[68])
    m = Fn(fwd, dw=nn.Conv1d(4, 4, 3, groups=4, dilation=2), up=nn.ConvTranspose1d(4, 4, 3, stride=2),
           up2=nn.ConvTranspose1d(4, 2, 3, stride=2))
    m.w, m.b = nn.Parameter(torch.randn(6, 2, 3)), nn.Parameter(torch.randn(6))
    imported(m, torch.randn(2, 4, 20))


# ---- splitting and joining --------------------------------------------------------------------
def test_chunk_split_unbind_stack():
    def fwd(self, x):
        a, b = x.chunk(2, dim=1)
        c, d, e = torch.split(x, [1, 2, 1], dim=1)
        rows = x.unbind(0)
        return torch.stack([a, b], dim=-1), torch.cat([e, d, c], 1), torch.stack(rows, 1), rows[1]
    graph = imported(Fn(fwd), torch.randn(2, 4, 3))
    assert ops(graph).count("split") == 3 and "stack" not in ops(graph)
    assert all(isinstance(n.attrs["sizes"], tuple) for n in graph.nodes if n.op == "split")


def test_interpolate_scale_factor_becomes_static_size():
    def fwd(self, x):
        return self.up(x), F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    graph = imported(Fn(fwd, up=nn.Upsample(scale_factor=2, mode="nearest")), torch.randn(1, 2, 5, 7))
    assert [n.attrs["size"] for n in graph.nodes] == [(10, 14), (10, 14)]
    with pytest.raises(FrontendError, match="not an exact output size"):
        import_module(Fn(lambda self, x: F.interpolate(x, scale_factor=1.7)), (torch.randn(1, 2, 5, 7),), None)
    imported(Fn(lambda self, x: F.interpolate(x, scale_factor=1.7, recompute_scale_factor=True)),
             torch.randn(1, 2, 5, 7))


def test_reductions_max_and_repeat():
    def fwd(self, x):
        values = torch.max(x, dim=-1).values + x.max(1)[0].sum(-1, keepdim=True)
        return values, x.amax(dim=(0, 2)), x.mean(), x.repeat(1, 2, 1), x.expand(3, 2, 4, 4)
    graph = imported(Fn(fwd), torch.randn(2, 4, 4))
    assert graph.nodes[-1].op == "expand" and "repeat" not in ops(graph)
    with pytest.raises(FrontendError, match="indices"):
        import_module(Fn(lambda self, x: x.max(1)[1].float()), (torch.randn(2, 4),), None)


def test_masked_fill_with_constant_and_computed_masks():
    m = Fn(lambda self, x: x.masked_fill(self.causal, float("-inf")).softmax(-1))
    m.register_buffer("causal", torch.ones(4, 4).triu(1).bool())
    assert ops(imported(m, torch.randn(2, 4, 4))) == ["mul", "add", "softmax"]
    mask = torch.rand(2, 1, 4) > 0.5
    imported(Fn(lambda self, x, keep: x.masked_fill(keep, -1e4)), torch.randn(2, 4, 4), mask)
    with pytest.raises(FrontendError, match="non-finite fill value"):
        import_module(Fn(lambda self, x, keep: x.masked_fill(keep, float("-inf"))), (torch.randn(2, 4, 4), mask), None)


# ---- weights ----------------------------------------------------------------------------------
def test_weights_are_shared_not_copied():
    emb = nn.Embedding(10, 8)
    head = nn.Linear(8, 10, bias=False)
    head.weight = emb.weight  # tied weights
    m = Fn(lambda self, ids: self.head(self.emb(ids)), emb=emb, head=head)
    graph = imported(m, torch.tensor([[1, 2, 3]]))
    assert list(graph.weights) == ["emb.weight"]
    assert graph.weights["emb.weight"].data.data_ptr() == emb.weight.data_ptr()
    assert graph.weights["emb.weight"].is_param

    zm = build("resnet18")
    graph = import_module(zm.module, zm.example_inputs, None)
    conv = graph.weights["layer1.0.conv1.weight"]
    assert conv.data.data_ptr() == zm.module.layer1[0].conv1.weight.data_ptr() and conv.is_param
    assert not graph.weights["bn1.running_mean"].is_param


def test_buffers_and_factories_become_constants():
    zm = build("bert")
    graph = import_module(zm.module, zm.example_inputs, None)
    assert not graph.weights["embeddings.position_ids"].is_param
    zeros = graph.weights["zeros_like"]
    assert not zeros.is_param and torch.equal(zeros.data, torch.zeros(2, 16, dtype=torch.int64))


# ---- refusals -------------------------------------------------------------------------------
def test_batchnorm_in_training_mode_is_refused():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    m.train()
    with pytest.raises(FrontendError, match="eval") as err:
        import_module(m, (torch.randn(1, 3, 8, 8),), None)
    assert "'1'" in str(err.value)
    assert torch.equal(m[1].running_mean, torch.zeros(4))  # the model was not run in training mode
    m.eval()
    m[1].track_running_stats = False
    with pytest.raises(FrontendError, match="track_running_stats"):
        import_module(m, (torch.randn(1, 3, 8, 8),), None)


def test_dropout_is_dropped_in_eval_and_refused_in_training():
    m = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.ReLU())
    assert ops(imported(m, torch.randn(2, 4))) == ["linear", "relu"]
    with pytest.raises(FrontendError, match="eval"):
        import_module(m.train(), (torch.randn(2, 4),), None)


@pytest.mark.parametrize("fn, name", [
    (lambda self, x: torch.nonzero(x), "torch.nonzero"),
    (lambda self, x: torch.fft.fft(x).real, "torch.fft.fft"),
    (lambda self, x: torch.where(x > 0, x, 0.0), "operator.gt"),
    (lambda self, x: x.cumsum(0), "Tensor.cumsum"),
])
def test_unsupported_ops_are_refused_with_name_and_location(fn, name):
    with pytest.raises(FrontendError) as err:
        import_module(Fn(fn), (torch.randn(4, 3),), None)
    message = str(err.value)
    assert name in message and "unsupported" in message
    assert f"{THIS_FILE}:" in message


def test_unsupported_module_is_named_with_its_path():
    m = nn.Sequential(nn.Linear(4, 4), nn.PReLU())
    with pytest.raises(FrontendError, match=r"nn.PReLU \('1'\)"):
        import_module(m, (torch.randn(2, 4),), None)


def test_data_dependent_control_flow_and_values_are_refused():
    def branchy(self, x):
        if x.sum() > 0:
            return x
        return -x
    with pytest.raises(FrontendError, match="could not trace") as err:
        import_module(Fn(branchy), (torch.randn(3),), None)
    assert "control flow" in str(err.value) and f"{THIS_FILE}:" in str(err.value)
    with pytest.raises(FrontendError, match="Tensor.item turns tensor data into a Python value"):
        import_module(Fn(lambda self, x: x * x.sum().item()), (torch.randn(3),), None)


def test_inplace_ops_are_functionalized():
    def fwd(self, x):
        y = x + 1
        y.relu_()                       # later reads of y see the relu
        z = y.mul_(2)
        return F.relu(y + z, True), self.act(y - 5)
    graph = imported(Fn(fwd, act=nn.ReLU(inplace=True)), torch.randn(3, 4))
    assert ops(graph) == ["add", "relu", "mul", "add", "relu", "sub", "relu"]


def test_inplace_ops_that_alias_are_refused():
    def on_view(self, x):
        y = x + 1
        y[:, 0].mul_(2)                 # modifies y through a view, and y is returned
        return y
    with pytest.raises(FrontendError, match="modifies a view of 'add'"):
        import_module(Fn(on_view), (torch.randn(3, 4),), None)
    m = Fn(lambda self, x: x + self.scale.mul_(x[0]))
    m.register_buffer("scale", torch.ones(4))
    with pytest.raises(FrontendError, match="modifies the model's tensor 'scale'"):
        import_module(m, (torch.randn(3, 4),), None)
    assert torch.equal(m.scale, torch.ones(4))  # refused before running


# ---- sources and outputs -------------------------------------------------------------------------
def test_sources_name_module_path_and_model_line():
    zm = build("vit")
    graph = import_module(zm.module, zm.example_inputs, None)
    by_name = {n.name: n for n in graph.nodes}
    assert by_name["patch_embed_proj"].source.startswith("patch_embed.proj (vit.py:")
    softmax = next(n for n in graph.nodes if n.op == "softmax")
    assert softmax.source.startswith("blocks.0.attn (vit.py:")


def test_outputs_are_flattened_in_order():
    def fwd(self, x):
        return {"b": x * 2, "a": (x + 1, [x - 1, None])}
    graph = imported(Fn(fwd), torch.randn(2))
    assert [v.producer.op for v in graph.outputs] == ["mul", "add", "sub"]


def test_unused_results_are_dropped():
    def fwd(self, x):
        unused = torch.exp(x)  # noqa: F841
        return x.relu()
    assert ops(imported(Fn(fwd), torch.randn(3))) == ["relu"]


def test_long_linear_chain():
    seq = nn.Sequential(*[m for _ in range(200) for m in (nn.Linear(8, 8), nn.ReLU())])
    graph = imported(seq, torch.randn(1, 8))
    assert len(graph) == 400 and math.isclose(graph.param_count(), 200 * 72)

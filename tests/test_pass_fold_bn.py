"""fold-bn: BatchNorm folded into conv / conv_transpose / linear must not change the outputs.

BN statistics are randomized (var in 0.5..2, non-trivial gamma/beta) so an identity-like BN
cannot hide a wrong fold. Every graph is built by hand with the Graph API.
"""
from __future__ import annotations

import pytest
import torch

from compiler.interpreter import interpret
from compiler.ir import Graph, TensorType
from compiler.verifier import verify
from passes.fold_bn import FoldBatchNorm


def add_bn(g: Graph, x, channels: int, *, affine: bool = True, name: str = "bn"):
    """Append an inference batch_norm with random statistics over dim 1 of `x`."""
    mean = g.add_weight(f"{name}.mean", torch.randn(channels), is_param=False)
    var = g.add_weight(f"{name}.var", torch.rand(channels) * 1.5 + 0.5, is_param=False)
    inputs = [x, mean, var]
    if affine:
        inputs += [g.add_weight(f"{name}.weight", torch.rand(channels) * 1.5 + 0.25),
                   g.add_weight(f"{name}.bias", torch.randn(channels))]
    return g.create_node("batch_norm", inputs, {"eps": 1e-3}, name=name).output


def conv_bn(*, cin=4, cout=6, dims=2, groups=1, bias=True, transpose=False, affine=True):
    """x -> conv (or conv_transpose) -> bn; returns the graph and a matching input."""
    g = Graph("conv_bn")
    x = g.add_input("x", TensorType((2, cin) + (7,) * dims, torch.float32))
    k = (3,) * dims
    wshape = (cin, cout // groups) + k if transpose else (cout, cin // groups) + k
    inputs = [x, g.add_weight("conv.weight", torch.randn(wshape))]
    if bias:
        inputs.append(g.add_weight("conv.bias", torch.randn(cout)))
    attrs = {"stride": (2,) * dims, "padding": (1,) * dims, "dilation": (1,) * dims,
             "groups": groups}
    if transpose:
        attrs["output_padding"] = (1,) * dims
    y = g.create_node("conv_transpose" if transpose else "conv", inputs, attrs, name="conv").output
    g.outputs = [add_bn(g, y, cout, affine=affine)]
    verify(g)
    return g, torch.randn(x.shape)


def linear_bn(*, batch_shape=(5,), bias=True):
    g = Graph("linear_bn")
    x = g.add_input("x", TensorType(batch_shape + (8,), torch.float32))
    inputs = [x, g.add_weight("fc.weight", torch.randn(12, 8))]
    if bias:
        inputs.append(g.add_weight("fc.bias", torch.randn(12)))
    y = g.create_node("linear", inputs, name="fc").output
    g.outputs = [add_bn(g, y, y.shape[1])]
    verify(g)
    return g, torch.randn(x.shape)


def fold_and_compare(g: Graph, x: torch.Tensor):
    """Run fold-bn and check: verified, same outputs, no BN left, user tensors untouched."""
    originals = {name: (w.data, w.data.clone()) for name, w in g.weights.items()}
    expected = interpret(g, x)
    result = FoldBatchNorm().run(g)
    verify(g)
    for actual, want in zip(interpret(g, x), expected, strict=True):
        torch.testing.assert_close(actual, want, rtol=1e-5, atol=1e-6 * want.abs().max().item())
    for tensor, snapshot in originals.values():
        assert torch.equal(tensor, snapshot), "fold-bn modified a weight tensor in place"
    return result


CONV_CASES = {
    "conv2d": dict(),
    "conv2d-no-bias": dict(bias=False),
    "conv2d-bn-no-affine": dict(affine=False),
    "grouped": dict(cin=4, cout=6, groups=2),
    "depthwise": dict(cin=6, cout=6, groups=6, bias=False),
    "conv1d": dict(dims=1),
    "conv3d": dict(dims=3, cout=3),
    "conv_transpose2d": dict(transpose=True),
    "conv_transpose-grouped": dict(transpose=True, cin=4, cout=6, groups=2, bias=False),
    "conv_transpose1d": dict(transpose=True, dims=1),
}


@pytest.mark.parametrize("case", CONV_CASES)
def test_fold_into_conv_is_exact(case):
    torch.manual_seed(0)
    g, x = conv_bn(**CONV_CASES[case])
    result = fold_and_compare(g, x)
    assert result.changed and result.stats["folded"] == 1 and result.stats["skipped"] == 0
    assert [n.op for n in g.nodes] == [g.outputs[0].producer.op]  # only the conv is left
    assert len(g.nodes[0].inputs) == 3 and g.nodes[0].inputs[2] is not None  # bias added
    assert set(g.weights) == {v.name for v in g.nodes[0].inputs[1:]}  # BN stats removed


@pytest.mark.parametrize("bias", [True, False])
def test_fold_into_linear_bn1d_is_exact(bias):
    torch.manual_seed(0)
    g, x = linear_bn(bias=bias)
    assert fold_and_compare(g, x).stats["folded"] == 1
    assert [n.op for n in g.nodes] == ["linear"]


def test_linear_with_3d_output_is_not_folded():
    """BN1d on [N, L, F] normalizes L, not linear's out features F: folding would be wrong."""
    torch.manual_seed(0)
    g, x = linear_bn(batch_shape=(2, 12))  # linear output [2, 12, 12]; BN over dim 1
    result = fold_and_compare(g, x)
    assert not result.changed and result.stats["skipped.linear-not-2d"] == 1


def test_producer_with_second_user_is_not_folded():
    torch.manual_seed(0)
    g, x = conv_bn()
    conv_out = g.nodes[0].output
    relu = g.create_node("relu", [conv_out], name="relu").output
    g.outputs.append(relu)
    result = fold_and_compare(g, x)
    assert not result.changed
    assert result.stats == {"folded": 0, "skipped": 1, "skipped.producer-output-shared": 1}
    assert [n.op for n in g.nodes] == ["conv", "batch_norm", "relu"]


def test_bn_after_unsupported_op_is_left_alone():
    g = Graph()
    x = g.add_input("x", TensorType((2, 3, 4, 4), torch.float32))
    g.outputs = [add_bn(g, g.create_node("relu", [x]).output, 3)]
    result = FoldBatchNorm().run(g)
    assert not result.changed and result.stats["skipped.unsupported-producer"] == 1
    verify(g)


def test_chained_bns_fold_one_after_another():
    torch.manual_seed(0)
    g, x = conv_bn()
    g.outputs = [add_bn(g, g.outputs[0], 6, name="bn2")]
    assert fold_and_compare(g, x).stats["folded"] == 2
    assert [n.op for n in g.nodes] == ["conv"]


def test_shared_weight_keeps_its_other_user():
    """A weight tied between two convs: the folded conv gets a new weight, the other keeps it."""
    torch.manual_seed(0)
    g, x = conv_bn()
    conv = g.nodes[0]
    twin = g.create_node("conv", [conv.inputs[0], conv.inputs[1], conv.inputs[2]], conv.attrs)
    g.outputs.append(twin.output)
    assert fold_and_compare(g, x).stats["folded"] == 1
    assert twin.inputs[1].name == "conv.weight"


def test_weight_computed_by_a_node_folds_after_fold_constants():
    """fold-bn needs constant operands; fold-constants turns a reshaped weight into one."""
    from passes.fold_constants import FoldConstants

    torch.manual_seed(0)
    g = Graph()
    x = g.add_input("x", TensorType((3, 8), torch.float32))
    flat = g.add_weight("fc.flat", torch.randn(96))
    w = g.create_node("reshape", [flat], {"shape": (12, 8)}).output
    g.outputs = [add_bn(g, g.create_node("linear", [x, w], name="fc").output, 12)]
    assert FoldBatchNorm().run(g).stats["skipped.non-constant-operand"] == 1
    assert FoldConstants().run(g).stats["folded"] == 1
    assert fold_and_compare(g, torch.randn(3, 8)).stats["folded"] == 1


# ---- BN after linear / matmul, BN before a layer, per-channel affine chains ---------------------
def _const(g: Graph, name: str, tensor: torch.Tensor):
    return g.add_constant(name, tensor)


def test_bn_after_matmul_by_a_constant_becomes_one_linear():
    torch.manual_seed(0)
    g = Graph()
    x = g.add_input("x", TensorType((5, 8), torch.float32))
    y = g.create_node("matmul", [x, g.add_weight("proj", torch.randn(8, 12))], name="mm").output
    g.outputs = [add_bn(g, y, 12)]
    result = fold_and_compare(g, torch.randn(5, 8))
    assert result.stats["folded"] == 1 and [n.op for n in g.nodes] == ["linear"]


def test_bn_over_features_after_linear_and_transpose_folds_through_the_permute():
    """BatchNorm1d on [N, F, L] after linear -> transpose: dim 1 is the linear's features."""
    torch.manual_seed(0)
    g = Graph()
    x = g.add_input("x", TensorType((2, 7, 8), torch.float32))
    y = g.create_node("linear", [x, g.add_weight("fc.weight", torch.randn(12, 8))], name="fc").output
    t = g.create_node("permute", [y], {"dims": (0, 2, 1)}).output
    g.outputs = [add_bn(g, t, 12)]
    assert fold_and_compare(g, torch.randn(2, 7, 8)).stats["folded"] == 1
    assert [n.op for n in g.nodes] == ["linear", "permute"]


def _bn_then(op: str, *, padding: int = 0, users: int = 1):
    g = Graph()
    if op == "conv":
        x = g.add_input("x", TensorType((2, 4, 7, 7), torch.float32))
    else:
        x = g.add_input("x", TensorType((5, 4), torch.float32))
    y = add_bn(g, x, 4)
    outs = []
    for i in range(users):
        if op == "conv":
            attrs = {"stride": (1, 1), "padding": (padding, padding), "dilation": (1, 1), "groups": 2}
            outs.append(g.create_node("conv", [y, g.add_weight(f"c{i}.weight", torch.randn(6, 2, 3, 3))], attrs).output)
        else:
            outs.append(g.create_node("linear", [y, g.add_weight(f"l{i}.weight", torch.randn(6, 4)),
                                                 g.add_weight(f"l{i}.bias", torch.randn(6))]).output)
    g.outputs = outs
    verify(g)
    return g, torch.randn(x.shape)


@pytest.mark.parametrize("op,users", [("conv", 1), ("conv", 2), ("linear", 1)])
def test_bn_before_an_unpadded_conv_or_a_linear_folds_into_it(op, users):
    torch.manual_seed(0)
    g, x = _bn_then(op, users=users)
    result = fold_and_compare(g, x)
    assert result.stats["folded"] == 1 and result.stats["folded.into-consumer"] == 1
    assert [n.op for n in g.nodes] == [op] * users


def test_bn_before_a_padded_conv_is_refused():
    """A zero-padded border would see 0 where BN gives its shift: not exact, left alone."""
    torch.manual_seed(0)
    g, x = _bn_then("conv", padding=1)
    result = fold_and_compare(g, x)
    assert not result.changed and result.stats["skipped.padded-consumer"] == 1


def test_scale_before_a_padded_conv_folds():
    """A per-channel scale keeps zeros zero, so padding does not matter."""
    torch.manual_seed(0)
    g = Graph()
    x = g.add_input("x", TensorType((2, 4, 7, 7), torch.float32))
    y = g.create_node("mul", [x, _const(g, "s", torch.rand(1, 4, 1, 1) + 0.5)]).output
    attrs = {"stride": (1, 1), "padding": (1, 1), "dilation": (1, 1), "groups": 1}
    g.outputs = [g.create_node("conv", [y, g.add_weight("c.weight", torch.randn(6, 4, 3, 3))], attrs).output]
    result = fold_and_compare(g, torch.randn(2, 4, 7, 7))
    assert result.stats["affine-folded"] == 1 and [n.op for n in g.nodes] == ["conv"]


def test_affine_chain_after_conv_folds_into_it():
    """conv -> *[1,C,1,1] -> +[C,1,1] -> -scalar -> /[C,1,1] -> (c - y) -> bn: one conv."""
    torch.manual_seed(0)
    g, x = conv_bn(bias=False)
    bn = g.nodes[-1]
    y = bn.inputs[0]
    steps = [("mul", torch.rand(1, 6, 1, 1) + 0.5, False), ("add", torch.randn(6, 1, 1), False),
             ("sub", torch.tensor(0.3), False), ("div", torch.rand(6, 1, 1) + 0.5, False),
             ("sub", torch.randn(1, 6, 1, 1), True)]
    for i, (op, c, const_first) in enumerate(steps):
        k = _const(g, f"c{i}", c)
        y = g.create_node(op, [k, y] if const_first else [y, k], before=bn).output
    g.set_input(bn, 0, y)
    verify(g)
    result = fold_and_compare(g, x)
    assert result.stats["affine-folded"] == 5 and result.stats["folded"] == 1
    assert [n.op for n in g.nodes] == ["conv"]


def test_affine_after_linear_folds_per_feature():
    torch.manual_seed(0)
    g = Graph()
    x = g.add_input("x", TensorType((2, 3, 8), torch.float32))
    y = g.create_node("linear", [x, g.add_weight("fc.weight", torch.randn(12, 8))], name="fc").output
    y = g.create_node("mul", [y, _const(g, "s", torch.randn(12))]).output
    g.outputs = [g.create_node("add", [y, _const(g, "t", torch.randn(1, 12))]).output]
    assert fold_and_compare(g, torch.randn(2, 3, 8)).stats["affine-folded"] == 2
    assert [n.op for n in g.nodes] == ["linear"]


def test_constants_that_are_not_per_channel_are_left_alone():
    torch.manual_seed(0)
    g, x = conv_bn()
    g.outputs = [g.create_node("add", [g.outputs[0], _const(g, "pos", torch.randn(1, 1, 4, 4))]).output]
    result = fold_and_compare(g, x)
    assert result.stats["folded"] == 1 and result.stats["affine-skipped.not-per-channel"] == 1
    assert [n.op for n in g.nodes] == ["conv", "add"]


def test_options_turn_consumer_and_affine_folding_off():
    torch.manual_seed(0)
    g, x = _bn_then("conv")
    assert not FoldBatchNorm(into_consumers=False).run(g).changed
    g = Graph()
    xin = g.add_input("x", TensorType((2, 8), torch.float32))
    y = g.create_node("linear", [xin, g.add_weight("fc.weight", torch.randn(4, 8))]).output
    g.outputs = [g.create_node("mul", [y, _const(g, "s", torch.randn(4))]).output]
    assert not FoldBatchNorm(affine=False).run(g).changed
    assert FoldBatchNorm().run(g).stats["affine-folded"] == 1


def test_training_mode_batchnorm_is_refused_by_compile():
    from compiler import compile
    from compiler.errors import NNForgeError

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).train()
    with pytest.raises(NNForgeError, match="BatchNorm2d '1' is in training mode"):
        compile(model, (torch.randn(1, 3, 8, 8),), pipeline="fold-bn")

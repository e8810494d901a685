"""Op interfaces: the structure each op declares once (weight layout, traits, own constraints),
checked against what the torch reference actually computes."""
import pytest
import torch
import torch.nn.functional as F

from compiler.ir import Graph, TensorType
from compiler.ops import Trait, all_ops, get_op

F64 = torch.float64


def _layer(op: str, x_shape, w_shape, **attrs):
    g = Graph()
    x = g.add_input("x", TensorType(x_shape, F64))
    w = g.add_weight("w", torch.randn(w_shape, dtype=F64))
    node = g.create_node(op, [x, w], attrs)
    return node, torch.randn(x_shape, dtype=F64)


CONV = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1))
LAYERS = {
    "conv": lambda: _layer("conv", (2, 6, 5, 5), (9, 2, 3, 3), groups=3, **CONV),
    "conv-ungrouped": lambda: _layer("conv", (2, 6, 5, 5), (4, 6, 3, 3), groups=1, **CONV),
    "conv_transpose": lambda: _layer("conv_transpose", (2, 6, 5, 5), (6, 2, 3, 3), groups=3,
                                     output_padding=(0, 0), **CONV),
    "linear": lambda: _layer("linear", (2, 3, 6), (5, 6)),
    "matmul": lambda: _layer("matmul", (2, 3, 6), (6, 5)),
}


def _run(node, x, w):
    return get_op(node.op).run([x, w], node.attrs)[0]


@pytest.mark.parametrize("case", LAYERS)
def test_scaling_output_channels_of_the_weight_scales_the_output_channels(case):
    node, x = LAYERS[case]()
    layout = get_op(node.op).layout
    w = node.inputs[layout.weight].data
    axis = layout.output_channel_axis(node)
    s = torch.randn(node.output.shape[axis], dtype=F64)
    shape = [-1 if d == axis else 1 for d in range(node.output.rank)]
    expected = _run(node, x, w) * s.view(shape)
    torch.testing.assert_close(_run(node, x, layout.scale_output_channels(w, s, node)), expected)


@pytest.mark.parametrize("case", LAYERS)
def test_scaling_input_channels_of_the_weight_scales_the_input_channels(case):
    node, x = LAYERS[case]()
    layout = get_op(node.op).layout
    w = node.inputs[layout.weight].data
    axis = layout.input_channel_axis(node)
    s = torch.randn(x.shape[axis], dtype=F64)
    shape = [-1 if d == axis else 1 for d in range(x.dim())]
    expected = _run(node, x * s.view(shape), w)
    torch.testing.assert_close(_run(node, x, layout.scale_input_channels(w, s, node)), expected)


def test_a_grouped_conv_unrolls_into_one_im2col_matrix_per_group():
    node, x = LAYERS["conv"]()
    layout = get_op("conv").layout
    w = node.inputs[1].data
    matrices = layout.matrices(w, node)
    assert matrices.shape == (3, 3, 2 * 9)
    patches = F.unfold(x, 3, padding=1)                      # [n, 6*9, positions], channel major
    out = torch.cat([matrices[g] @ patches[:, g * 18:(g + 1) * 18] for g in range(3)], dim=1)
    torch.testing.assert_close(out.view(node.output.shape), _run(node, x, w))


def test_a_linear_weight_is_its_own_matrix():
    node, _ = LAYERS["linear"]()
    w = node.inputs[1].data
    assert torch.equal(get_op("linear").layout.matrices(w, node)[0], w)


def test_every_op_with_a_weight_input_declares_where_it_is():
    weighted = {name for name, op in all_ops().items() if "weight" in op.inputs and op.category == "nn"}
    assert weighted <= {name for name, op in all_ops().items() if op.layout is not None}
    assert get_op("conv").has(Trait.LAYER) and not get_op("relu").has(Trait.LAYER)


def test_traits_agree_with_what_the_ops_compute():
    a, b = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    for name, op in all_ops().items():
        if op.has(Trait.COMMUTATIVE):
            attrs = op.complete_attrs({})
            x, y = (a > 0, b > 0) if op.category == "logic" else (a, b)
            assert torch.equal(op.run([x, y], attrs)[0], op.run([y, x], attrs)[0]), name
        if op.has(Trait.ELEMENTWISE) and len(op.inputs) == 1 and not op.attrs:
            whole = op.run([a.abs() + 0.5], {})[0]      # positive inputs: every unary op is defined
            part = op.run([a.abs()[:, :1] + 0.5], {})[0]
            assert torch.equal(whole[:, :1], part), name
    assert get_op("reshape").has(Trait.SHAPE_ONLY) and not get_op("softmax").has(Trait.ELEMENTWISE)


def test_an_op_verify_hook_reports_what_shape_inference_cannot_see():
    clip = get_op("clip")
    x = [TensorType((2,), torch.float32)]
    assert clip.verify(x, {"min": None, "max": None}) == [
        "clip needs a min or a max bound (with neither it is an identity)"]
    assert clip.verify(x, {"min": 2.0, "max": 1.0})
    assert clip.verify(x, {"min": 0.0, "max": 6.0}) == []

"""The SIMD-group sparse kernel computes what the masked dense layer computes (1e-5 relative).

Weights are zeroed in random groups of `lanes` output channels at one input position, packed once,
and run through the C++ kernel; torch's dense conv/linear on the masked weight is the reference.
The geometries cover strides, padding, dilation, conv groups, a last group shorter than `lanes`,
1-d and unbatched inputs, and matrix products of 1 to 37 rows. The kernel compiles without
warnings, is cached per user, and without a C++ compiler the error says so while the masked
dense layers still run.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from compiler.backend import get_backend
from compiler.ir import Graph, TensorType
from compiler.sparse import build
from compiler.sparse.layers import kernel_layer, unsupported
from passes.simd_sparsity.groups import find_layers, keep_top, simd_matrix_mask, weight_mask

RTOL = 1e-5


def layer_graph(op: str, x_shape, weight: torch.Tensor, bias: torch.Tensor | None, **attrs):
    graph = Graph()
    x = graph.add_input("x", TensorType(tuple(x_shape), torch.float32))
    w = graph.add_weight("layer.weight", weight)
    b = graph.add_weight("layer.bias", bias) if bias is not None else None
    node = graph.create_node(op, [x, w] if op == "matmul" else [x, w, b], attrs)
    graph.outputs = [node.output]
    return graph, node


def group_sparse(graph: Graph, lanes: int, density: float, seed: int) -> torch.Tensor:
    """The layer's weight with a random `density` of its SIMD groups kept."""
    (layer,), _ = find_layers(graph, pattern="simd", lanes=1, m=1)
    g, rows, cols = layer.matrix_shape
    scores = torch.rand(g, -(-rows // lanes), cols, generator=torch.Generator().manual_seed(seed))
    keep = keep_top(scores, round(density * scores.numel()))
    return layer.weight.data * weight_mask(layer, simd_matrix_mask(keep, rows, lanes))


def assert_matches(out: torch.Tensor, ref: torch.Tensor) -> None:
    assert out.shape == ref.shape
    scale = ref.abs().max().clamp_min(1e-30)
    assert (out - ref).abs().max() / scale < RTOL


CONVS = [  # x shape, spatial dims, out channels, kernel, stride, padding, dilation, groups, lanes, bias
    ((2, 8, 9, 7), 2, 20, 3, 1, 1, 1, 1, 16, True),      # 20 outputs: a last group of 4; images side by side
    ((4, 8, 6, 5), 2, 16, 3, 1, 2, 2, 2, 8, True),       # side by side with dilation and conv groups
    ((3, 4, 6, 6), 2, 8, 3, 1, 0, 1, 1, 4, True),        # side by side without padding
    ((1, 16, 14, 14), 2, 32, 3, 2, 1, 1, 1, 8, False),   # stride 2
    ((1, 16, 11, 13), 2, 32, 3, 2, 2, 2, 2, 4, True),    # dilation 2 at stride 2, conv groups, odd sizes
    ((3, 6, 10, 10), 2, 12, 1, 1, 0, 1, 3, 4, True),     # grouped 1x1
    ((1, 64, 16, 16), 2, 64, 1, 1, 0, 1, 1, 16, False),  # 1x1 read in place (no packing)
    ((2, 32, 7, 7), 2, 32, 1, 1, 0, 1, 1, 16, True),     # 1x1 in place, last tile moved back
    ((1, 8, 3, 3), 2, 16, 1, 1, 0, 1, 1, 16, False),     # 1x1 on fewer pixels than a tile
    ((1, 64, 7, 7), 2, 48, 1, 2, 0, 1, 1, 16, False),    # strided 1x1: one stride phase read
    ((1, 5, 20, 20), 2, 7, 5, 3, 2, 1, 1, 4, True),      # 7 outputs with lanes 4
    ((8, 9, 21), 1, 24, 5, 2, 2, 1, 1, 8, True),         # conv1d
    ((8, 9, 9), 2, 16, 3, 1, 1, 1, 1, 16, False),        # unbatched conv2d
]


@pytest.mark.parametrize("x_shape, spatial, out, k, stride, pad, dil, groups, lanes, has_bias", CONVS)
@pytest.mark.parametrize("density", [1.0, 0.5, 0.1, 0.0])
def test_sparse_conv_matches_the_masked_dense_conv(x_shape, spatial, out, k, stride, pad, dil, groups, lanes,
                                                   has_bias, density):
    torch.manual_seed(0)
    channels = x_shape[-spatial - 1]
    weight = torch.randn(out, channels // groups, *([k] * spatial))
    bias = torch.randn(out) if has_bias else None
    graph, node = layer_graph("conv", x_shape, weight, bias, stride=[stride] * spatial, padding=[pad] * spatial,
                              dilation=[dil] * spatial, groups=groups)
    assert unsupported(node) is None
    masked = group_sparse(graph, lanes, density, seed=out)
    x = torch.randn(x_shape)
    conv = (F.conv1d, F.conv2d)[spatial - 1]
    ref = conv(x, masked, bias, stride=stride, padding=pad, dilation=dil, groups=groups)
    assert_matches(kernel_layer(node, masked, bias, lanes)(x), ref)


@pytest.mark.parametrize("rows, k, n, lanes", [(1, 30, 10, 16), (37, 64, 100, 8), (16, 128, 64, 16),
                                                (5, 7, 3, 4), (4, 33, 20, 16)])
@pytest.mark.parametrize("density", [1.0, 0.5, 0.0])
def test_sparse_linear_matches_the_masked_dense_linear(rows, k, n, lanes, density):
    torch.manual_seed(1)
    weight, bias = torch.randn(n, k), torch.randn(n)
    graph, node = layer_graph("linear", (rows, k), weight, bias)
    masked = group_sparse(graph, lanes, density, seed=rows)
    x = torch.randn(rows, k)
    assert_matches(kernel_layer(node, masked, bias, lanes)(x), F.linear(x, masked, bias))


def test_sparse_matmul_by_a_constant_matrix_groups_its_columns():
    torch.manual_seed(2)
    graph, node = layer_graph("matmul", (2, 6, 24), torch.randn(24, 40), None)
    masked = group_sparse(graph, 8, 0.5, seed=3)
    # the groups run along the matrix's columns: its output channels
    assert ((masked.view(24, 5, 8) != 0).any(-1) == (masked.view(24, 5, 8) != 0).all(-1)).all()
    x = torch.randn(2, 6, 24)
    assert_matches(kernel_layer(node, masked, None, 8)(x), x @ masked)


def test_the_kernel_compiles_without_warnings_and_is_cached(tmp_path, monkeypatch):
    compiler = build.find_compiler()
    monkeypatch.setenv("NNFORGE_CACHE_DIR", str(tmp_path))
    target = build.library_path(compiler)
    assert target.parent == tmp_path / "sparse-kernel"
    assert build.build(compiler, target) == ""  # no diagnostics with -Wall -Wextra
    assert target.is_file() and list(target.parent.iterdir()) == [target]  # no temporary left over
    assert build.library_path(compiler) == target  # same source, flags, compiler and CPU: same file


def test_without_a_compiler_the_error_is_clear_and_dense_layers_still_run(tmp_path, monkeypatch):
    from compiler.api import compile

    monkeypatch.setenv("NNFORGE_CACHE_DIR", str(tmp_path))  # nothing built there yet
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-g++"))
    build.load_kernel.cache_clear()
    try:
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.ReLU()).eval()
        x = torch.randn(1, 3, 8, 8)
        with pytest.raises(build.SparseKernelError, match="no C.. compiler for the sparse kernel") as info:
            compile(model, (x,), "simd-sparsify", target=get_backend("pytorch")(sparse_kernel=True))
        assert "sparse-kernel=false" in info.value.hint
        dense = compile(model, (x,), "simd-sparsify", target="pytorch")  # the masked weights, run by torch
        assert dense.artifact.run(x)[0].shape == (1, 16, 6, 6)
    finally:
        build.load_kernel.cache_clear()


def test_a_packed_layer_refuses_inputs_of_another_shape():
    graph, node = layer_graph("conv", (2, 8, 9, 9), torch.randn(16, 8, 3, 3), None, stride=[1, 1], padding=[1, 1],
                              dilation=[1, 1], groups=1)
    conv = kernel_layer(node, group_sparse(graph, 16, 0.5, seed=0), None, 16)
    with pytest.raises(build.SparseKernelError, match=r"packed for inputs \[2, 8, 9, 9\]"):
        conv(torch.randn(1, 8, 9, 9))  # images side by side were laid out for a batch of 2
    graph, node = layer_graph("linear", (3, 12), torch.randn(16, 12), None)
    linear = kernel_layer(node, group_sparse(graph, 16, 0.5, seed=0), None, 16)
    with pytest.raises(build.SparseKernelError, match=r"packed for inputs \[\.\.\., 12\]"):
        linear(torch.randn(3, 10))

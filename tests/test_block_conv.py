"""block-conv computes exactly the paper's definition of block convolution.

Every case runs the blocked graph in the interpreter and compares it with an independent
loop-over-blocks implementation (tests/block_conv_reference.py) of the same module; the PyTorch
backend must match the interpreter bit for bit, and onnxruntime must match to float rounding.
"""
from __future__ import annotations

import onnx
import pytest
import torch
from torch import nn

from compiler.backend import get_backend
from compiler.frontend import import_model
from compiler.interpreter import interpret
from compiler.ir_parser import parse_graph
from compiler.printer import print_graph
from compiler.tiling import TilingAnnotation
from compiler.verifier import verify
from passes.block_conv import BlockConv
from tests.block_conv_reference import blocked_reference
from tests.zoo import build

PATTERNS = {"F8": dict(pattern="fixed", block=8), "H2x2": dict(pattern="hierarchical", grid=2)}
PADDINGS = ("zeros", "replicate", "reflect")
ZOO = {"resnet18": dict(), "mobilenetv2": dict(input_size=64), "unet": dict(), "yolo": dict(input_size=128)}


def zoo_case(name: str) -> tuple[nn.Module, tuple]:
    """The zoo model and its inputs (YOLO at 128: at 64 every map of its head fits one block).
    For MobileNetV2 its first 11 feature blocks (64x64 down to
    4x4, depthwise and strided): its randomly initialised deeper layers wash out the border
    differences blocking makes, so the whole model could not tell a right answer from a wrong one."""
    zoo = build(name, **ZOO[name])
    return (zoo.module.features[:11] if name == "mobilenetv2" else zoo.module), zoo.example_inputs


def blocked_graph(module: nn.Module, inputs: tuple, **options):
    graph = import_model(module, inputs)
    result = BlockConv(**options).run(graph)
    verify(graph)
    return graph, result


def reference_output(module: nn.Module, inputs: tuple, **options) -> torch.Tensor:
    ref = blocked_reference(module, **{k: v for k, v in options.items() if k in ("pattern", "block", "grid", "padding")})
    with torch.no_grad():
        return ref(*inputs)


def assert_matches_reference(module, inputs, **options):
    graph, result = blocked_graph(module, inputs, **options)
    got = interpret(graph, *inputs)[0]
    want = reference_output(module, inputs, **options)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        assert (module(*inputs) - want).abs().max() > 1e-4, "blocking changed nothing: the case tests nothing"
    return graph, result


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("pattern", list(PATTERNS))
@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_models_match_the_loop_over_blocks_definition(name, pattern, padding, single_thread):
    module, inputs = zoo_case(name)
    graph, result = assert_matches_reference(module, inputs, padding=padding, **PATTERNS[pattern])
    assert result.changed and result.stats["blocked_layers"] > 0
    tilings = [n.annotation(TilingAnnotation) for n in graph.nodes if n.annotation(TilingAnnotation)]
    assert len(tilings) == result.stats["blocked_layers"]
    assert {t.padding for t in tilings if t.padding != "zeros"} <= {padding}


@pytest.mark.parametrize("name", ["resnet18", "yolo"])
def test_pytorch_backend_is_bit_exact_and_onnxruntime_agrees(name, single_thread):
    zoo = build(name)
    graph, _ = blocked_graph(zoo.module, zoo.example_inputs, pattern="fixed", block=8, padding="reflect")
    expected = interpret(graph, *zoo.example_inputs)
    torch_out = get_backend("pytorch")().lower(graph, None).run(*zoo.example_inputs)
    assert all(torch.equal(a, b) for a, b in zip(torch_out, expected))
    ort_out = get_backend("onnx")().lower(graph, None).run(*zoo.example_inputs)
    for a, b in zip(ort_out, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


class Geometry(nn.Module):
    """Rectangular kernels, dilation, depthwise groups, strides and both poolings on a 32x48 map."""

    def __init__(self):
        super().__init__()
        self.rect = nn.Conv2d(3, 8, (3, 5), padding=(1, 2))
        self.dilated = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8)
        self.strided = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.avg = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.max = nn.MaxPool2d(2)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        y = torch.relu(self.rect(x))
        y = y + self.dilated(y)
        return self.head(self.max(self.avg(torch.relu(self.strided(y)))))


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_strides_dilation_groups_and_rectangular_kernels(pattern, padding, single_thread):
    torch.manual_seed(0)
    module, x = Geometry().eval(), torch.randn(2, 3, 32, 48)
    graph, result = assert_matches_reference(module, (x,), padding=padding, **PATTERNS[pattern])
    # F8 leaves the 1x1 head plain: its 8x12 map is wider than a block but not a multiple of it
    assert result.stats["blocked_layers"] == {"F8": 5, "H2x2": 6}[pattern]


@pytest.mark.parametrize("padding", PADDINGS)
def test_a_model_from_onnx_matches_the_definition(padding, tmp_path, single_thread):
    torch.manual_seed(1)
    module, x = Geometry().eval(), torch.randn(1, 3, 32, 48)
    path = tmp_path / "geometry.onnx"
    torch.onnx.export(module, (x,), str(path), dynamo=False, input_names=["x"], opset_version=17)
    graph = import_model(onnx.load(str(path)), (x,))
    BlockConv(pattern="fixed", block=16, padding=padding).run(graph)
    want = reference_output(module, (x,), pattern="fixed", block=16, padding=padding)
    torch.testing.assert_close(interpret(graph, x)[0], want, rtol=1e-5, atol=1e-5)
    ort = get_backend("onnx")().lower(graph, None).run(x)[0]
    torch.testing.assert_close(ort, want, rtol=1e-4, atol=1e-5)


class Remainders(nn.Module):
    """Layers the remainder rule keeps plain: a valid (unpadded) conv, whose blocks would each
    shrink, and a stride that does not divide the block."""

    def __init__(self):
        super().__init__()
        self.ok = nn.Conv2d(3, 4, 3, padding=1)
        self.valid = nn.Conv2d(4, 4, 3)
        self.stride3 = nn.Conv2d(4, 4, 3, stride=3, padding=1)

    def forward(self, x):
        y = self.ok(x)
        return self.valid(y).mean((2, 3)) + self.stride3(y).mean((2, 3))


def test_layers_that_cannot_be_blocked_stay_plain_with_a_reason():
    torch.manual_seed(2)
    module, x = Remainders().eval(), torch.randn(1, 3, 16, 24)
    graph, result = assert_matches_reference(module, (x,), pattern="fixed", block=8)
    assert result.stats["blocked_layers"] == 1
    unblocked = result.stats["unblocked"]
    assert "valid: blocks of 8x8 stitch to 12x18, not 14x22" in unblocked
    assert "stride3: blocks of 8x8 stitch to 6x9, not 6x8 (stride 3x3 must divide the block" in unblocked
    plan, _ = BlockConv(pattern="fixed", block=7).analyze(import_model(module, (x,)))
    assert "ok, valid, stride3: map 16x24 is not a multiple of block 7" in plan.describe_unblocked()


def test_reflect_padding_wider_than_a_block_is_refused():
    module = nn.Sequential(nn.Conv2d(2, 2, 5, padding=2)).eval()
    x = torch.randn(1, 2, 8, 8)
    graph, result = blocked_graph(module, (x,), pattern="hierarchical", grid=4, padding="reflect")
    assert result.stats["blocked_layers"] == 0
    assert "reflect padding of 2 needs blocks larger than 2x2" in result.stats["unblocked"]


def test_skip_and_only_select_layers_by_name():
    zoo = build("resnet18")
    _, skipped = blocked_graph(zoo.module, zoo.example_inputs, block=8, skip=["conv1", "maxpool"])
    assert "conv1: skipped by skip=[conv1]" in skipped.stats["unblocked"]
    _, only = blocked_graph(zoo.module, zoo.example_inputs, block=8, only=["layer1"])
    assert only.stats["blocked_layers"] == 4


def test_upsampling_that_reads_one_pixel_per_output_stays_on_blocks():
    """A kernel == stride transposed conv (and a nearest resize) maps each block to a block of the
    upsampled map on its own, so the UNet's decoder stays blocked: one cut at the input, one
    stitch at the output, and still the loop-over-blocks definition."""
    zoo = build("unet", bilinear_levels=())
    graph, result = assert_matches_reference(zoo.module, zoo.example_inputs, pattern="hierarchical", grid=2)
    assert result.stats["layout_conversions"] == 2
    up = next(n for n in graph.nodes if n.op == "conv_transpose")
    blocks = 4 * zoo.example_inputs[0].shape[0]                      # 2x2 blocks per sample, in and out
    assert up.inputs[0].shape[0] == up.outputs[0].shape[0] == blocks


def test_chains_are_cut_once_and_the_annotation_round_trips_through_ir_text():
    zoo = build("unet")
    graph, result = blocked_graph(zoo.module, zoo.example_inputs, pattern="hierarchical", grid=2,
                                  padding="replicate")
    assert result.stats["layout_conversions"] < result.stats["blocked_layers"]
    text = print_graph(graph)
    assert "@tiling<block=(32, 32), grid=(2, 2), padding='replicate', group=" in text
    weights = {name: w.data for name, w in graph.weights.items()}
    assert print_graph(parse_graph(text, weights)) == text

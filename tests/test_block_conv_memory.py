"""The on-chip memory analysis of block-conv, its options and errors, and the trainable module.

The two-conv net below is small enough to count by hand: x is 4x16x16, both convs 3x3 with 8
output channels, maps 16-bit. x = 2048 bytes, each conv output = 4096 bytes per frame.
"""
from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from compiler.backend import get_backend
from compiler.cli import main
from compiler.errors import PipelineError
from compiler.frontend import import_model
from compiler.pipeline import parse_pipeline
from passes.block_conv import BlockConv


class TwoConvs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(4, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv2(torch.relu(self.conv1(x))))


def two_convs():
    torch.manual_seed(0)
    return TwoConvs().eval(), (torch.randn(1, 4, 16, 16),)


def graph_of(factory=two_convs):
    module, inputs = factory()
    return import_model(module, inputs)


def test_traffic_and_buffers_counted_by_hand():
    _, analysis = BlockConv(block=8, buffer_kb=4).analyze(graph_of())
    layer, line, fused = (analysis.schedules[k] for k in ("layer", "line", "fused"))
    # layer by layer: conv1 reads x, writes and conv2 reads its output, conv2 writes the result
    assert layer.traffic == 2048 + 4096 + 4096 + 4096
    # fused: only the network's input and output cross the chip boundary
    assert fused.traffic == 2048 + 4096 and len(fused.fused_groups) == 1
    group = fused.groups[0]
    assert group.grid == (2, 2)
    # one of 4 tiles: at conv2 its input and output maps are live, (4096 + 4096) / 4 bytes;
    # the weights (conv1 296 + conv2 584 parameters, 16-bit) fit beside them
    assert group.weights_on_chip and group.buffer == (4096 + 4096) / 4 + (296 + 584) * 2
    # line buffers: two rows of each conv's input plus one 3x3 window, and the weights
    assert line.groups[0].buffer == (2 * 16 * 4 + 9 * 4) * 2 + (2 * 16 * 8 + 9 * 8) * 2 + (296 + 584) * 2
    assert line.traffic == fused.traffic


def test_weights_stream_per_tile_when_they_do_not_fit():
    _, analysis = BlockConv(block=8, buffer_kb=2.5).analyze(graph_of())
    group = analysis.schedules["fused"].groups[0]
    assert not group.weights_on_chip and group.buffer == 2048
    assert analysis.schedules["fused"].weight_traffic == 4 * (296 + 584) * 2


def test_quantized_maps_are_counted_at_their_bit_width():
    graph = graph_of()
    pipeline = parse_pipeline("quantize{weights=int8,activations=int8,calibration=1}")
    pipeline.passes[0].run(graph)
    _, analysis = BlockConv(block=8, buffer_kb=4).analyze(graph)
    # conv2's input is quantized to int8 (2048 bytes); the graph input and output stay 16-bit
    assert analysis.schedules["layer"].traffic == 2048 + 2048 + 2048 + 4096
    assert analysis.sg.stages[0].weight_bytes == 288 * 1 + 8 * 2  # int8 weight (4x8x3x3), 16-bit bias


def test_budget_too_small_for_any_fusion_names_the_option_and_the_layers():
    with pytest.raises(PipelineError, match=r"buffer-kb=1 is too small to fuse any two layers; the cheapest "
                                            r"pair, conv1 and conv2, needs 2.0 KB") as err:
        BlockConv(block=8, buffer_kb=1).run(graph_of())
    assert "raise buffer-kb to at least 2" in err.value.hint


@pytest.mark.parametrize("options, message", [
    ("block=0", "option 'block' must be in [1, 65536], got 0"),
    ("grid=0", "option 'grid' must be in [1, 1024], got 0"),
    ("buffer-kb=0", "option 'buffer-kb' must be in (0.0, "),
    ("padding=circular", "option 'padding' expects zeros | replicate | reflect"),
])
def test_bad_options_are_pipeline_errors(options, message):
    with pytest.raises(PipelineError, match=re.escape(message)):
        parse_pipeline(f"block-conv{{{options}}}")


def test_a_block_larger_than_every_map_names_the_option_and_the_largest_layer():
    with pytest.raises(PipelineError, match="block=16 is not smaller than any feature map") as err:
        BlockConv(block=16).run(graph_of())
    assert "layer conv1" in err.value.where and "16x16" in err.value.where


def test_a_grid_that_divides_no_map_names_the_option():
    with pytest.raises(PipelineError, match="grid=3 divides no feature map"):
        BlockConv(pattern="hierarchical", grid=3).run(graph_of())


def test_only_patterns_that_select_nothing_are_refused():
    with pytest.raises(PipelineError, match=r"only=\[layer9\] selects no convolution or pooling layer"):
        BlockConv(block=8, only=["layer9"]).run(graph_of())


def test_a_model_without_convolutions_is_refused():
    graph = import_model(nn.Sequential(nn.Linear(4, 4)).eval(), (torch.randn(2, 4),))
    with pytest.raises(PipelineError, match="no 2-d convolution or pooling"):
        BlockConv().run(graph)


def test_stats_report_the_three_schedules():
    graph = graph_of()
    stats = BlockConv(block=8, buffer_kb=4).run(graph).stats
    assert stats["pattern"] == "F8" and stats["blocked_layers"] == 2 and stats["layout_conversions"] == 2
    assert stats["traffic_kb.layer"] == 14.0 and stats["traffic_kb.fused"] == 6.0
    assert stats["traffic_reduction"] == 2.33 and stats["fused_groups"] == 1


def test_the_blocked_pytorch_module_trains():
    graph = graph_of()
    BlockConv(block=8, padding="reflect").run(graph)
    module = get_backend("pytorch")().lower(graph, None).obj
    params = dict(module.named_parameters())
    assert len(params) == 4
    for p in params.values():
        p.requires_grad_(True)
    module(torch.randn(1, 4, 16, 16)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params.values())


def test_cli_inspect_prints_the_analysis_and_draws_it(tmp_path, capsys):
    png = tmp_path / "memory.png"
    code = main(["inspect", "tests/test_block_conv_memory.py:two_convs", "--block-conv", "block=8,buffer-kb=4",
                 "--plot", str(png)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "block-conv F8 (zeros padding), 2 of 2 conv/pool layers blocked; budget 4 KB, 16-bit maps" in out
    assert "fused blocks" in out and "6.0" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_reports_bad_block_conv_options_cleanly(capsys):
    code = main(["inspect", "tests/test_block_conv_memory.py:two_convs", "--block-conv", "block=64"])
    assert code == 2
    assert "block=64 is not smaller than any feature map" in capsys.readouterr().err

"""conv-transpose-as-conv: a kernel == stride transposed conv as a 1x1 conv plus depth-to-space,
the same outputs; other transposed convs are left alone."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from compiler import compile
from compiler.interpreter import interpret


class Up(nn.Module):
    def __init__(self, kernel=2, stride=2, padding=0, bias=True):
        super().__init__()
        self.up = nn.ConvTranspose2d(6, 4, kernel, stride=stride, padding=padding, bias=bias)

    def forward(self, x):
        return torch.relu(self.up(x))


@pytest.mark.parametrize("kernel,bias", [(2, True), (3, False), (1, True)])
def test_kernel_equal_to_stride_becomes_conv_and_depth_to_space(kernel, bias):
    torch.manual_seed(0)
    model, x = Up(kernel, kernel, bias=bias).eval(), torch.randn(2, 6, 5, 7)
    result = compile(model, (x,), "conv-transpose-as-conv")
    ops = [n.op for n in result.graph.nodes]
    assert "conv_transpose" not in ops and ops[:4] == ["conv", "reshape", "permute", "reshape"]
    assert result.report.passes[0].stats["rewritten"] == 1
    assert torch.allclose(interpret(result.graph, x)[0], model(x), rtol=1e-5, atol=1e-5)


def test_overlapping_or_padded_taps_stay_transposed():
    x = torch.randn(1, 6, 5, 5)
    for model in (Up(4, 2).eval(), Up(2, 2, padding=1).eval()):
        result = compile(model, (x,), "conv-transpose-as-conv")
        assert "conv_transpose" in [n.op for n in result.graph.nodes]
        assert result.report.passes[0].stats["rewritten"] == 0

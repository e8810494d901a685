"""resize-as-conv: nearest and bilinear upsampling by whole factors as a depthwise conv plus
depth-to-space, the same outputs as F.interpolate; other resizes are left alone and named."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compiler import compile
from compiler.interpreter import interpret


class Upsample(nn.Module):
    def __init__(self, scale, mode, align_corners=None):
        super().__init__()
        self.scale, self.mode, self.align_corners = scale, mode, align_corners

    def forward(self, x):
        y = F.interpolate(x, scale_factor=self.scale, mode=self.mode, align_corners=self.align_corners)
        return torch.relu(y - 0.1)


@pytest.mark.parametrize("scale,mode", [(2, "bilinear"), (3, "bilinear"), ((2, 4), "bilinear"),
                                        (2, "nearest"), (3, "nearest-exact")])
def test_whole_factor_upsampling_becomes_a_depthwise_conv_and_depth_to_space(scale, mode):
    torch.manual_seed(0)
    model, x = Upsample(scale, mode).eval(), torch.randn(2, 5, 6, 7)
    result = compile(model, (x,), "resize-as-conv")
    ops = [n.op for n in result.graph.nodes]
    assert "resize" not in ops and ops[-5:-2] == ["reshape", "permute", "reshape"]
    conv = next(n for n in result.graph.nodes if n.op == "conv")
    assert conv.attrs["groups"] == 5 and ("pad" in ops) == (mode == "bilinear")
    assert result.report.passes[0].stats == {"rewritten": 1}
    torch.testing.assert_close(interpret(result.graph, x)[0], model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model,why", [
    (Upsample(2, "bilinear", align_corners=True), "align_corners=True"),
    (Upsample(1.5, "bilinear"), "is not a whole multiple"),
    (Upsample(2, "bicubic"), "mode bicubic"),
])
def test_other_resizes_stay_and_say_why(model, why):
    result = compile(model.eval(), (torch.randn(1, 3, 8, 8),), "resize-as-conv", capture="fx")
    assert "resize" in [n.op for n in result.graph.nodes]
    stats = result.report.passes[0].stats
    assert stats["rewritten"] == 0 and why in next(iter(stats["kept"].values()))


def test_the_zoo_unet_with_bilinear_upsampling_runs_through_the_hls_backend():
    """The HLS lowering runs resize-as-conv: the zoo UNet's default bilinear levels get stages
    (edge pad -> the window generator, depthwise conv, depth-to-space reorder), bit-exact."""
    from tests.test_backend_hls import assert_bit_exact, assert_cycles_counted, simulate
    from tests.zoo import build
    zoo = build("unet", batch=1, base=4, input_size=32)
    x = torch.rand(2, *zoo.example_inputs[0].shape[1:])
    artifact, got, ref = simulate(zoo.module, x, x, target="hls")
    assert_bit_exact(got, ref)
    assert_cycles_counted(artifact)
    assert "resize-as-conv" in artifact.info["lowering"]["pipeline"]
    assert any("depthwise 3x3" in row["what"] for row in artifact.info["stages"])

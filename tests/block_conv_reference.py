"""Block convolution written the obvious way, to check the `block-conv` pass against.

Every `nn.Conv2d`, `nn.MaxPool2d` and `nn.AvgPool2d` of a module is wrapped so that, at run time,
it loops over the blocks of its input map: slice the block, pad it on its own, run the layer on
it, and stitch the block results with `torch.cat` (the paper's definition, arXiv 2105.08937).
It shares no code with the pass: the block shape is worked out here from the input's shape, and a
layer that cannot be blocked exactly (blocks the map does not divide, results that would not
stitch to the plain output size, reflect padding wider than a block) runs plain, which is the
remainder rule the pass documents.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

_TORCH_PAD = {"zeros": "constant", "replicate": "replicate", "reflect": "reflect"}


class BlockLoop(nn.Module):
    def __init__(self, layer: nn.Module, pattern: str, block: int, grid: int, padding: str):
        super().__init__()
        self.layer, self.pattern, self.block, self.grid, self.padding = layer, pattern, block, grid, padding

    def block_shape(self, h: int, w: int) -> tuple[int, int] | None:
        if self.pattern == "fixed":
            if h <= self.block and w <= self.block:
                return None
            bh, bw = min(self.block, h), min(self.block, w)
        else:
            if h % self.grid or w % self.grid:
                return None
            bh, bw = h // self.grid, w // self.grid
        if h % bh or w % bw:
            return None
        return bh, bw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plain = self.layer(x)
        shape = self.block_shape(x.shape[2], x.shape[3])
        if shape is None:
            return plain
        bh, bw = shape
        if isinstance(self.layer, nn.Conv2d) and self.padding == "reflect" and \
                (self.layer.padding[0] >= bh or self.layer.padding[1] >= bw):
            return plain
        try:
            rows = [torch.cat([self.run_block(x[:, :, i:i + bh, j:j + bw]) for j in range(0, x.shape[3], bw)], 3)
                    for i in range(0, x.shape[2], bh)]
        except RuntimeError:  # a block smaller than the kernel
            return plain
        out = torch.cat(rows, 2)
        return out if out.shape == plain.shape else plain

    def run_block(self, block: torch.Tensor) -> torch.Tensor:
        layer = self.layer
        if not isinstance(layer, nn.Conv2d):
            return layer(block)  # pooling pads each block with its own rule
        ph, pw = layer.padding
        block = F.pad(block, (pw, pw, ph, ph), mode=_TORCH_PAD[self.padding])
        return F.conv2d(block, layer.weight, layer.bias, layer.stride, 0, layer.dilation, layer.groups)


def blocked_reference(module: nn.Module, pattern: str = "fixed", block: int = 28, grid: int = 4,
                      padding: str = "zeros") -> nn.Module:
    """A copy of `module` whose convolutions and poolings run block by block."""
    ref = copy.deepcopy(module)
    _wrap(ref, pattern, block, grid, padding)
    return ref.eval()


def _wrap(module: nn.Module, *options) -> None:
    for name, child in module.named_children():
        if isinstance(child, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            setattr(module, name, BlockLoop(child, *options))
        else:
            _wrap(child, *options)

"""Renders docs/images/prune-groups-residual.png: the coupling groups of a residual block.

    python docs/render_prune_groups.py

Also prints `describe_groups` for the same block (the text shown in docs/pruning.md).
Needs matplotlib (the `bench` or `dev` extra).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler.frontend import import_model  # noqa: E402
from passes.prune.render import describe_groups, draw_groups  # noqa: E402

OUT = Path(__file__).resolve().parent / "images" / "prune-groups-residual.png"


class ResidualBlock(nn.Module):
    """stem -> [conv-bn-relu-conv-bn + identity] -> relu -> [conv-bn + 1x1 downsample] -> head."""

    def __init__(self, c: int = 16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3 = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(2 * c)
        self.down = nn.Conv2d(c, 2 * c, 1, stride=2, bias=False)
        self.fc = nn.Linear(2 * c, 10)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
        x = torch.relu(self.bn3(self.conv3(x)) + self.down(x))
        return self.fc(x.mean((2, 3)))


def main() -> None:
    graph = import_model(ResidualBlock().eval(), (torch.randn(1, 3, 16, 16),))
    graph.name = "ResidualBlock"
    print(describe_groups(graph))
    path = draw_groups(graph, OUT, title="prune groups of a residual block (one colour per coupled group)")
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()

"""`TilingAnnotation`: a layer that runs block by block, for the passes and backends that read it.

`block-conv` cuts a feature map into a grid of non-overlapping blocks and runs a convolution or
pooling layer on every block independently (each block padded on its own). The rewritten graph
computes that with plain ops (reshape, permute, pad, conv); this annotation on the layer node
keeps the facts a hardware backend needs without re-deriving them from those reshapes: the
input block shape, the grid, how each block is padded, and the fused group the on-chip memory
analysis put the layer in (layers of one group exchange blocks on-chip).
"""
from __future__ import annotations

from dataclasses import dataclass

from compiler.annotations import Annotation

PADDING_MODES = ("zeros", "replicate", "reflect")
EDGE_PADDING = ("replicate", "reflect")    # the modes whose blocks are padded by an explicit `pad` copying the edge


@dataclass(frozen=True)
class TilingAnnotation(Annotation):
    """block: (height, width) of one input block; grid: blocks along (height, width);
    padding: how each block of a convolution is padded (pooling keeps its own padding rule);
    group: the fused group of the memory analysis (-1: none)."""

    tag = "tiling"

    block: tuple[int, int]
    grid: tuple[int, int]
    padding: str = "zeros"
    group: int = -1

    def __post_init__(self) -> None:
        if self.padding not in PADDING_MODES:
            raise ValueError(f"padding must be one of {PADDING_MODES}, got {self.padding!r}")
        if len(self.block) != 2 or len(self.grid) != 2 or min(*self.block, *self.grid) < 1:
            raise ValueError(f"block and grid must be two positive sizes, got {self.block}, {self.grid}")

    @property
    def blocks(self) -> int:
        return self.grid[0] * self.grid[1]

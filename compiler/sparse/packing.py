"""The kernel's compressed form of a SIMD-group sparse weight, built once per layer.

A weight in matrix form [groups, rows, columns] (`WeightLayout.matrices`: rows are output channels,
columns input positions) is cut into blocks of `lanes` rows. For every block, the columns where
any of its weights is nonzero are its groups: `offsets` says where in the (packed) input the
group's value lives, `values` holds its `lanes` weights (zero past the last output channel).
Blocks are numbered conv group major; `block_start[b]` is block b's first group.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from compiler.sparse.build import SparseKernelError


@dataclass(frozen=True)
class PackedWeight:
    lanes: int
    block_start: torch.Tensor  # int32 [blocks + 1]
    offsets: torch.Tensor      # int32 [nonzero groups]
    values: torch.Tensor       # float32 [nonzero groups, lanes]
    bias: torch.Tensor         # float32 [blocks * lanes], zero where the layer has none


def block_groups(matrices: torch.Tensor, lanes: int) -> torch.Tensor:
    """[groups, rows, cols] -> [groups, blocks, lanes, cols], rows zero-padded to whole blocks."""
    g, rows, cols = matrices.shape
    blocks = math.ceil(rows / lanes)
    padded = torch.zeros(g, blocks * lanes, cols, dtype=matrices.dtype)
    padded[:, :rows] = matrices
    return padded.view(g, blocks, lanes, cols)


def pack(matrices: torch.Tensor, lanes: int, column_offsets: np.ndarray,
         bias: torch.Tensor | None = None) -> PackedWeight:
    """The compressed form; `column_offsets[j]` is where column j's input value lives."""
    blocked = block_groups(matrices.detach().float(), lanes)
    g, blocks, _, cols = blocked.shape
    flat = blocked.reshape(g * blocks, lanes, cols)
    nonzero = (flat != 0).any(dim=1)  # [all blocks, cols]
    block, column = nonzero.nonzero(as_tuple=True)  # block-major, columns ascending
    counts = nonzero.sum(dim=1)
    block_start = torch.zeros(g * blocks + 1, dtype=torch.int64)
    block_start[1:] = counts.cumsum(0)
    if block_start[-1] >= 2**31 or (len(column_offsets) and int(np.max(column_offsets)) >= 2**31):
        raise SparseKernelError("a layer too large for the sparse kernel's 32-bit offsets",
                                hint="leave it dense: simd-sparsify{skip=[...]}")
    padded_bias = torch.zeros(g * blocks * lanes)
    if bias is not None:
        rows = matrices.shape[1]
        padded_bias.view(g, blocks * lanes)[:, :rows] = bias.detach().float().view(g, rows)
    return PackedWeight(
        lanes=lanes, block_start=block_start.to(torch.int32),
        offsets=torch.from_numpy(np.asarray(column_offsets, dtype=np.int64))[column].to(torch.int32),
        values=flat[block, :, column].contiguous(), bias=padded_bias)


@dataclass(frozen=True)
class ConvGeometry:
    """Sizes the kernel needs for a 2-d convolution, and the stride-phase planes of its input."""

    channels: int
    height: int
    width: int
    out_channels: int
    out_height: int
    out_width: int
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    kernel: tuple[int, int]
    groups: int
    batch: int = 1

    @property
    def side_by_side(self) -> bool:
        """A stride-1 layer on a batch of padded images lays them side by side, sharing the
        padding columns between neighbours (a 1x1 layer without padding reads its input in place)."""
        in_place = self.padding == (0, 0) and self.kernel == (1, 1)
        return self.stride == (1, 1) and self.batch > 1 and not in_place

    @property
    def planes(self) -> tuple[int, int]:
        """Rows and columns of one stride phase of the zero-padded input (of the whole batch when
        side by side)."""
        if self.side_by_side:
            return self.height + 2 * self.padding[0], self.batch * (self.width + self.padding[1]) + self.padding[1]
        return (math.ceil((self.height + 2 * self.padding[0]) / self.stride[0]),
                math.ceil((self.width + 2 * self.padding[1]) / self.stride[1]))

    def column_offsets(self) -> np.ndarray:
        """Where each column (input channel, kernel row, kernel column) of a conv group reads: tap
        (r, s) lands in phase (r*dh mod sh, s*dw mod sw), shifted by (r*dh div sh, s*dw div sw)."""
        (sh, sw), (dh, dw), (kh, kw) = self.stride, self.dilation, self.kernel
        hs, ws = self.planes
        ic, r, s = np.meshgrid(np.arange(self.channels // self.groups), np.arange(kh), np.arange(kw),
                               indexing="ij")
        row, col = r * dh, s * dw
        phase = (ic * sh + row % sh) * sw + col % sw
        return (phase * hs * ws + (row // sh) * ws + col // sw).reshape(-1)

    @property
    def phases(self) -> int:
        """Bit mask of the stride phases (a * sw + b) some kernel tap reads."""
        (sh, sw), (dh, dw), (kh, kw) = self.stride, self.dilation, self.kernel
        return sum({1 << ((r * dh % sh) * sw + s * dw % sw) for r in range(kh) for s in range(kw)})

    def shape_vector(self) -> tuple[int, ...]:
        """The `shape` argument of nnf_sparse_conv2d."""
        hs, ws = self.planes
        return (self.batch, self.channels, self.height, self.width, self.out_channels, self.out_height,
                self.out_width, *self.stride, *self.padding, self.groups, hs, ws, self.phases,
                int(self.side_by_side))

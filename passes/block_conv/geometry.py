"""Where a layer's blocks lie, and whether the layer can run block by block at all.

The semantics (Block Convolution, arXiv 2105.08937): the input map of a layer is cut into a grid
of equal, non-overlapping blocks; every block is padded on its own (zeros, replicate or reflect
for convolutions; pooling keeps its own padding rule) and the layer runs on each block alone; the
block results are stitched in grid order.

* fixed (`F28`): blocks of `block x block`; a map no larger than the block along a dim keeps that
  dim whole, and a map no larger than the block in both dims stays a plain layer;
* hierarchical (`H4x4`): a `grid x grid` arrangement of blocks on every map.

Remainder rule: blocks are never ragged. A map the block size (fixed) or the grid (hierarchical)
does not divide stays a plain layer, and so does a layer whose stitched block results would not
have the plain layer's output size (a stride that does not divide the block, a padding that does
not keep "same" size), or whose blocks are too small for the kernel or for reflect padding. Each
such layer is reported with its reason.
"""
from __future__ import annotations

from dataclasses import dataclass

from compiler.errors import IRError
from compiler.ir import Node, TensorType
from compiler.ops import get_op

SPATIAL_OPS = ("conv", "max_pool", "avg_pool")  # the layers that run per block


@dataclass(frozen=True)
class Tiling:
    """A map cut into grid[0] x grid[1] blocks of block[0] x block[1]."""

    grid: tuple[int, int]
    block: tuple[int, int]

    @property
    def count(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def size(self) -> tuple[int, int]:
        return self.grid[0] * self.block[0], self.grid[1] * self.block[1]

    def __str__(self) -> str:
        return f"{self.grid[0]}x{self.grid[1]} blocks of {self.block[0]}x{self.block[1]}"


@dataclass(frozen=True)
class Decision:
    """How one spatial layer runs: on blocks (`tiling_in` -> `tiling_out`) or plain (`reason`)."""

    node: Node
    tiling_in: Tiling | None = None
    tiling_out: Tiling | None = None
    reason: str = ""  # why a layer that could have been blocked stays plain

    @property
    def blocked(self) -> bool:
        return self.tiling_in is not None


def is_spatial(node: Node) -> bool:
    """A 2-d convolution or pooling over an NCHW map."""
    if node.op not in SPATIAL_OPS or node.inputs[0].rank != 4:
        return False
    return len(node.attrs["stride"]) == 2


def map_size(node: Node) -> tuple[int, int]:
    return node.inputs[0].shape[-2], node.inputs[0].shape[-1]


def block_pads(node: Node) -> tuple[int, int]:
    """Padding each block of a convolution gets on (top/bottom, left/right); pooling: none
    added (it pads with its own rule inside the op)."""
    return tuple(node.attrs["padding"]) if node.op == "conv" else (0, 0)


def decide(node: Node, pattern: str, block: int, grid: int, padding: str) -> Decision:
    """The tiling of one spatial layer under the pattern, or why it stays plain."""
    h, w = map_size(node)
    if pattern == "fixed":
        if h <= block and w <= block:
            return Decision(node)  # one block: a plain layer, nothing to report
        bh, bw = min(block, h), min(block, w)
        if h % bh or w % bw:
            return Decision(node, reason=f"map {h}x{w} is not a multiple of block {block}")
    else:
        if h % grid or w % grid:
            return Decision(node, reason=f"map {h}x{w} does not divide into a {grid}x{grid} grid")
        bh, bw = h // grid, w // grid
    tiling = Tiling((h // bh, w // bw), (bh, bw))
    pads = block_pads(node)
    if padding == "reflect" and any(p >= b for p, b in zip(pads, (bh, bw))):
        return Decision(node, reason=f"reflect padding of {max(pads)} needs blocks larger than {bh}x{bw}")
    out = block_output(node, (bh, bw), pads)
    if out is None:
        return Decision(node, reason=f"blocks of {bh}x{bw} are smaller than the kernel")
    want = node.outputs[0].shape[-2:]
    got = (out[0] * tiling.grid[0], out[1] * tiling.grid[1])
    if got != tuple(want):
        stride = "x".join(str(s) for s in node.attrs["stride"])
        return Decision(node, reason=f"blocks of {bh}x{bw} stitch to {got[0]}x{got[1]}, not {want[0]}x{want[1]} "
                                     f"(stride {stride} must divide the block, padding keep its size)")
    return Decision(node, tiling, Tiling(tiling.grid, out))


def block_output(node: Node, block: tuple[int, int], pads: tuple[int, int]) -> tuple[int, int] | None:
    """Output size of the layer on one padded block, from the op registry's own shape rule."""
    x = node.inputs[0]
    blk = TensorType((1, x.shape[1], block[0] + 2 * pads[0], block[1] + 2 * pads[1]), x.dtype)
    attrs = dict(node.attrs, padding=(0, 0)) if node.op == "conv" else node.attrs
    types = [blk] + [None if v is None else v.type for v in node.inputs[1:]]
    try:
        out = get_op(node.op).infer(types, attrs)[0]
    except IRError:
        return None
    return out.shape[-2], out.shape[-1]

"""Mapping one layer's integer matrices onto tiles: bit slicing, signed encoding, sparsity, placement.

Weights: each integer weight w is split into `slices` cells of `cell-bits` each (slice k holds
bits [k * cell-bits, (k + 1) * cell-bits)); slice results are shifted and added after the ADC.
Signs: `differential` stores max(w, 0) and max(-w, 0) in a pair of columns whose currents are
subtracted before one ADC conversion; `offset` stores w + offset (offset = -min code) in one
column per slice and subtracts, per tile, a reference column per slice holding the offset's own
slices, so both encodings hand the ADC the signed partial sum of w.
Sparsity: inputs whose weights are zero for every output of a group (pruned input channels,
SIMD-structured zero blocks) take no rows; outputs whose weights are all zero take no columns;
a piece that would hold only zeros is not placed, so a tile of zeros is never allocated. The
dense mapping of the same layer is counted too, for the cells and tiles saved.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from backends.crossbar.integer_form import IntegerLayer
from backends.crossbar.placement import pack_diagonal
from compiler.errors import BackendError


@dataclass(frozen=True)
class TileSpec:
    rows: int
    cols: int
    cell_bits: int
    signed: str = "differential"
    sparse: bool = True


@dataclass
class Piece:
    group: int
    rows: torch.Tensor      # int64 input indices within the group (tile rows, in order)
    outputs: torch.Tensor   # int64 output indices within the group
    row_pos: int = 0        # where `rows` starts in the group's kept inputs
    out_pos: int = 0        # where `outputs` starts in the group's kept outputs
    tile: int = 0
    row: int = 0            # first tile row
    col: int = 0            # first physical column


@dataclass
class LayerMapping:
    layer: IntegerLayer
    spec: TileSpec
    slices: int
    offset: int                 # 0 for differential
    cols_per_output: int        # physical columns per output
    reserved_cols: int          # reference columns per tile (offset encoding)
    pieces: list[Piece]
    tiles: int
    dense_tiles: int
    dense_cells: int
    zero_rows: int              # input rows dropped (summed over groups)
    zero_outputs: int           # output columns dropped
    kept_rows: list[torch.Tensor] = field(default_factory=list)      # per group: inputs that take rows
    kept_outputs: list[torch.Tensor] = field(default_factory=list)   # per group: outputs that take columns
    rows_used: list[int] = field(default_factory=list)    # per tile
    cols_used: list[int] = field(default_factory=list)    # physical, per tile, reference columns included

    @property
    def name(self) -> str:
        return self.layer.node.name

    @property
    def adc_per_output(self) -> int:
        """ADC columns per output: one per slice (a differential pair is one conversion)."""
        return self.slices

    @property
    def adc_cols(self) -> int:
        """ADC columns of a tile available to weights."""
        return (self.spec.cols - self.reserved_cols) // (self.cols_per_output // self.slices)

    @property
    def cells(self) -> int:
        return sum(self.tile_cells())

    def tile_cells(self) -> list[int]:
        """Programmed cells per tile: the pieces' blocks plus the reference columns."""
        cells = [rows * self.reserved_cols for rows in self.rows_used]
        for piece in self.pieces:
            cells[piece.tile] += len(piece.rows) * len(piece.outputs) * self.cols_per_output
        return cells


def slice_count(layer: IntegerLayer, spec: TileSpec) -> tuple[int, int]:
    """(cells per weight, offset): magnitude bits for differential, unsigned range bits for offset."""
    if spec.signed == "differential":
        bits, offset = max(abs(layer.wmin), abs(layer.wmax)).bit_length(), 0
    else:
        offset = max(0, -layer.wmin)
        bits = (layer.wmax + offset).bit_length()
    return max(1, math.ceil(bits / spec.cell_bits)), offset


def _chunks(index: torch.Tensor, size: int) -> list[tuple[int, torch.Tensor]]:
    return [(i, index[i:i + size]) for i in range(0, len(index), size)]


def _occupied(nonzero: torch.Tensor, outs: torch.Tensor, rows: torch.Tensor, out_chunk: int,
              row_chunk: int) -> list[list[bool]]:
    """Whether each (output chunk, row chunk) block of the kept matrix holds a nonzero weight."""
    kept = nonzero.index_select(0, outs).index_select(1, rows)
    n_out, n_row = -(-len(outs) // out_chunk), -(-len(rows) // row_chunk)
    padded = torch.zeros((n_out * out_chunk, n_row * row_chunk), dtype=torch.bool)
    padded[:len(outs), :len(rows)] = kept
    return padded.view(n_out, out_chunk, n_row, row_chunk).any(dim=3).any(dim=1).tolist()


def map_layer(layer: IntegerLayer, spec: TileSpec) -> LayerMapping:
    where = f"layer '{layer.node.name}' ({layer.node.op})"
    slices, offset = slice_count(layer, spec)
    per_output = slices * (2 if spec.signed == "differential" else 1)
    reserved = slices if spec.signed == "offset" else 0
    if per_output > spec.cols - reserved:
        raise BackendError(
            f"{where}: one output needs {per_output} columns ({slices} slices of cell-bits={spec.cell_bits}"
            f"{' x 2 differential' if spec.signed == 'differential' else ' + ' + str(reserved) + ' reference'}) "
            f"but a tile has cols={spec.cols}", where=where,
            hint="raise 'cols' or 'cell-bits', or quantize to fewer weight bits")
    outs_per_tile = (spec.cols - reserved) // per_output
    pieces, dense_pieces, kept_rows, kept_outputs = [], [], [], []
    zero_rows = zero_outputs = 0
    for g, matrix in enumerate(layer.matrices):
        all_rows = torch.arange(matrix.shape[1])
        all_outs = torch.arange(matrix.shape[0])
        dense_pieces += [(len(r), len(o)) for _, r in _chunks(all_rows, spec.rows)
                         for _, o in _chunks(all_outs, outs_per_tile)]
        if spec.sparse:
            nonzero = matrix != 0
            rows = torch.nonzero(nonzero.any(dim=0)).flatten()
            outs = torch.nonzero(nonzero.any(dim=1)).flatten()
            zero_rows += len(all_rows) - len(rows)
            zero_outputs += len(all_outs) - len(outs)
        else:
            rows, outs = all_rows, all_outs
        kept_rows.append(rows)
        kept_outputs.append(outs)
        occupied = _occupied(nonzero, outs, rows, outs_per_tile, spec.rows) if spec.sparse else None
        for i, (row_pos, r) in enumerate(_chunks(rows, spec.rows)):
            for j, (out_pos, o) in enumerate(_chunks(outs, outs_per_tile)):
                if occupied is not None and not occupied[j][i]:
                    continue  # only zeros: no cells
                pieces.append(Piece(g, r, o, row_pos, out_pos))
    sizes = [(len(p.rows), len(p.outputs) * per_output) for p in pieces]
    slots, tiles = pack_diagonal(sizes, spec.rows, spec.cols - reserved)
    rows_used, cols_used = [0] * tiles, [0] * tiles
    for piece, slot in zip(pieces, slots):
        piece.tile, piece.row, piece.col = slot.tile, slot.row, slot.col
        rows_used[slot.tile] = max(rows_used[slot.tile], slot.row + len(piece.rows))
        cols_used[slot.tile] = max(cols_used[slot.tile], slot.col + len(piece.outputs) * per_output)
    cols_used = [c + reserved for c in cols_used]
    dense_slots, dense_tiles = pack_diagonal([(r, o * per_output) for r, o in dense_pieces], spec.rows,
                                             spec.cols - reserved)
    dense_rows = [0] * dense_tiles
    for (r, _), slot in zip(dense_pieces, dense_slots):
        dense_rows[slot.tile] = max(dense_rows[slot.tile], slot.row + r)
    dense_cells = sum(r * o * per_output for r, o in dense_pieces) + reserved * sum(dense_rows)
    return LayerMapping(layer, spec, slices, offset, per_output, reserved, pieces, tiles, dense_tiles,
                        dense_cells, zero_rows, zero_outputs, kept_rows, kept_outputs, rows_used, cols_used)

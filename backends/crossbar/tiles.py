"""The crossbar integer matrix-vector product, vectorised over a layer's tiles and the batch.

For each input cycle (the input codes sliced into `dac-bits` pieces, the top slice of a signed
code negative in two's complement), every tile computes column currents I = G_eff^T v in one
batched matmul; the ADC rounds each current to its step (a power of two, the smallest that covers
the tile's largest partial sum scaled by `adc-range`) and clips it to `adc-bits`; the digital unit
shifts the cycles and the weight slices into place and adds the tiles of each output. With ideal
levels and an ADC whose step is 1, every stage is an exact integer sum, so the result is the
integer product bit for bit. An ideal ADC (`adc-bits=0`) is linear, so the cycles collapse into
one matmul with whole codes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from backends.crossbar.mapping import LayerMapping, Piece
from backends.crossbar.scratch import Scratch

CHUNK_ELEMENTS = 1 << 20   # floats per matmul operand chunk: bounds peak memory per layer


@dataclass
class TileArrays:
    """Where each tile row reads its input and where each ADC column's result goes."""

    row_index: torch.Tensor   # int64 [T, R] into the flattened group inputs; sentinel -> zero input
    adc_out: torch.Tensor     # int64 [T, A] into the flattened outputs; sentinel -> discarded
    adc_shift: torch.Tensor   # float64 [T, A] 2^(cell_bits * slice), 0 where unused
    adc_slice: torch.Tensor   # int64 [T, A] the weight slice a column holds
    rows_used: torch.Tensor   # int64 [T]
    adc_used: torch.Tensor    # int64 [T]: ADC columns in use (pieces fill columns from the left)
    inputs: int               # groups * inputs per group (the sentinel index)
    outputs: int              # groups * outputs per group


def slice_levels(values: torch.Tensor, slices: int, cell_bits: int) -> torch.Tensor:
    """Non-negative integers [..., n] -> uint8 levels [..., n, slices] (least significant slice first)."""
    shifts = torch.arange(slices, dtype=torch.int32) * cell_bits
    return ((values.to(torch.int32).unsqueeze(-1) >> shifts) & ((1 << cell_bits) - 1)).to(torch.uint8)


def build_arrays(mapping: LayerMapping) -> TileArrays:
    layer, spec = mapping.layer, mapping.spec
    groups, outs, ins = layer.matrices.shape
    tiles, rows, adc = mapping.tiles, spec.rows, mapping.adc_cols
    per_adc = mapping.cols_per_output // mapping.slices
    row_index = torch.full((tiles, rows), groups * ins, dtype=torch.int64)
    adc_out = torch.full((tiles, adc), groups * outs, dtype=torch.int64)
    adc_shift = torch.zeros((tiles, adc), dtype=torch.float64)
    adc_slice = torch.zeros((tiles, adc), dtype=torch.int64)
    column = torch.arange(adc) % mapping.slices          # the slice of each ADC column of a full tile
    shifts = 2.0 ** (column.double() * spec.cell_bits)
    for p in mapping.pieces:
        c0, n = p.col // per_adc, len(p.outputs) * mapping.slices
        row_index[p.tile, p.row:p.row + len(p.rows)] = p.group * ins + p.rows
        adc_out[p.tile, c0:c0 + n] = (p.group * outs + p.outputs).repeat_interleave(mapping.slices)
        adc_shift[p.tile, c0:c0 + n] = shifts[:n]
        adc_slice[p.tile, c0:c0 + n] = column[:n]
    adc_used = (adc_out < groups * outs).sum(dim=1)
    return TileArrays(row_index, adc_out, adc_shift, adc_slice, torch.tensor(mapping.rows_used, dtype=torch.int64),
                      adc_used, groups * ins, groups * outs)


def sliced_matrices(mapping: LayerMapping) -> list[list[torch.Tensor]]:
    """Cell levels of the kept rows and outputs, per part and group: [kept inputs, kept outputs *
    slices] uint8 (column o * slices + k holds slice k of output o). The parts are the positive and
    negative weights for differential pairs, the offset weights for the offset encoding. Built one
    slice at a time in uint8 (a 4-slice int32 intermediate would quadruple a layer's memory)."""
    spec, slices, mask = mapping.spec, mapping.slices, (1 << mapping.spec.cell_bits) - 1
    wide = torch.int16 if max(abs(mapping.layer.wmin), mapping.layer.wmax) + mapping.offset < 2 ** 15 else torch.int32
    out = []
    for part in ((lambda m: m.clamp(min=0)), (lambda m: (-m).clamp(min=0))) if spec.signed == "differential" \
            else ((lambda m: m + mapping.offset),):
        per_group = []
        for g, matrix in enumerate(mapping.layer.matrices):
            kept = part(matrix.index_select(1, mapping.kept_rows[g]).index_select(0, mapping.kept_outputs[g])
                        .to(wide)).t()                                            # [rows, outs]
            levels = torch.empty((kept.shape[0], kept.shape[1], slices), dtype=torch.uint8)
            for k in range(slices):
                levels[:, :, k] = (kept >> (k * spec.cell_bits)) & mask
            per_group.append(levels.view(kept.shape[0], -1))
        out.append(per_group)
    return out


@dataclass
class PlacedPiece:
    """A piece and where its weights come from: slices of the group's matrix where the piece's
    inputs and outputs are consecutive (no copy), index tensors where sparsity left gaps."""

    piece: Piece
    rows: slice | torch.Tensor
    outputs: slice | torch.Tensor


def _run(index: torch.Tensor) -> slice | torch.Tensor:
    """A slice for increasing indices without gaps (a piece's rows and outputs increase)."""
    if not len(index):
        return index
    start, stop = int(index[0]), int(index[-1]) + 1
    return slice(start, stop) if stop - start == len(index) else index


def tile_pieces(mapping: LayerMapping) -> list[list[PlacedPiece]]:
    """The pieces on each tile of the layer."""
    by_tile: list[list[PlacedPiece]] = [[] for _ in range(mapping.tiles)]
    for p in mapping.pieces:
        by_tile[p.tile].append(PlacedPiece(p, _run(p.rows), _run(p.outputs)))
    return by_tile


def chunk_parts(mapping: LayerMapping, pieces: list[PlacedPiece], first: int, rows: int, slots: int,
                count: int) -> torch.Tensor:
    """The weight part each output slot of tiles [first, first + count) holds, per tile row (int32;
    conductance.CellTables spreads a part over its slices): [2, count, rows, slots] (max(w, 0),
    max(-w, 0)) for differential pairs, [count, rows, slots] (w + offset) for the offset encoding,
    where unused cells of the used rows hold the zero weight (the offset), like the reference.
    `pieces`: the pieces on those tiles; `rows`, `slots`: the tiles' first rows and output slots
    (the rest is never read)."""
    w = torch.zeros((count, rows, slots), dtype=torch.int32)
    for placed in pieces:
        p, matrix = placed.piece, mapping.layer.matrices[placed.piece.group]
        block = matrix[placed.outputs] if isinstance(placed.outputs, slice) else matrix.index_select(0, placed.outputs)
        block = block[:, placed.rows] if isinstance(placed.rows, slice) else block.index_select(1, placed.rows)
        s0 = p.col // mapping.cols_per_output
        w[p.tile - first, p.row:p.row + len(p.rows), s0:s0 + len(p.outputs)] = block.t()
    if mapping.spec.signed == "differential":
        positive = w.clamp(min=0)
        return torch.stack((positive, w.neg_().clamp_(min=0)))
    return w.add_(mapping.offset)


@dataclass(frozen=True)
class Converters:
    dac_bits: int
    adc_bits: int          # 0: ideal (no rounding, no clipping)
    adc_range: float       # fraction of the worst-case partial sum the ADC spans
    cell_levels: int       # 2^cell_bits


def input_cycles(qmin: int, qmax: int, dac_bits: int) -> list[tuple[int, int, bool]]:
    """(bit shift, bits, signed) per DAC cycle, least significant first; the top cycle of a signed
    code carries its sign (two's complement)."""
    signed = qmin < 0
    bits = max(int(qmax).bit_length(), int(-qmin - 1).bit_length() if signed else 0) + (1 if signed else 0)
    bits = max(bits, 1)
    count = math.ceil(bits / dac_bits)
    return [(k * dac_bits, min(dac_bits, bits - k * dac_bits), signed and k == count - 1) for k in range(count)]


def adc_steps(rows_used: torch.Tensor, conv: Converters, vmax: int) -> torch.Tensor:
    """Per-tile ADC step: the smallest power of two whose signed range covers the partial sums."""
    worst = rows_used.double() * (conv.cell_levels - 1) * vmax * conv.adc_range
    top = 2 ** (conv.adc_bits - 1) - 1
    exponent = torch.ceil(torch.log2(torch.clamp(worst / top, min=1.0)))
    return (2.0 ** exponent).float()


def dac_planes(codes: torch.Tensor, qmin: int, qmax: int, conv: Converters) -> torch.Tensor:
    """Input codes [N, inputs] -> DAC levels per cycle [S, N, inputs + 1] (a zero column appended
    for unused rows); an ideal ADC takes the whole codes in one cycle."""
    if conv.adc_bits == 0:
        return torch.cat([codes, codes.new_zeros(codes.shape[0], 1)], dim=1).unsqueeze(0)
    cycles = input_cycles(qmin, qmax, conv.dac_bits)
    ints = codes.to(torch.int16 if -2 ** 15 <= qmin and qmax < 2 ** 15 else torch.int32)
    planes = torch.empty((len(cycles), codes.shape[0], codes.shape[1] + 1),
                         dtype=torch.int8 if conv.dac_bits < 8 else torch.int16)
    planes[:, :, -1] = 0
    for plane, (shift, bits, signed) in zip(planes[:, :, :-1], cycles):
        level = ints >> shift
        torch.bitwise_and(level, (1 << bits) - 1, out=plane) if not signed else plane.copy_(level)
    return planes


def _row_runs(row_index: torch.Tensor) -> list[tuple[int, int]]:
    """Runs of consecutive tiles that read the same inputs (one row chunk split over columns)."""
    same = (row_index[1:] == row_index[:-1]).all(dim=1).tolist()
    runs, begin = [], 0
    for i, equal in enumerate(same):
        if not equal:
            runs.append((begin, i + 1))
            begin = i + 1
    runs.append((begin, len(row_index)))
    return runs


def mvm_into(out: torch.Tensor, planes: torch.Tensor, qmin: int, qmax: int, arrays: TileArrays, first: int,
             g_eff: torch.Tensor, conv: Converters, gain: torch.Tensor | None = None,
             dtype: torch.dtype = torch.float32, scratch: Scratch | None = None) -> None:
    """Adds the products of tiles [first, first + len(g_eff)) to out [N, outputs + 1] (float64).
    g_eff may cover only the first rows and ADC columns of the tiles (the rest unused).

    planes: the inputs' DAC levels per cycle from `dac_planes`. Tiles that share their rows are
    read by one matmul over their concatenated columns (each input vector gathered once). The
    conductances are divided by their tile's ADC step before the product (a power of two: the
    currents come out divided exactly), so the ADC is a rounding and a clip of the product; the
    cycles are shifted and added in integer codes by one small matmul, and the step joins the
    slice shift and the drift gain in one float64 factor per column."""
    scratch = scratch or Scratch()
    n_total, cycles_n = planes.shape[1], planes.shape[0]
    tiles, rows, adc = g_eff.shape
    ideal = conv.adc_bits == 0
    step = torch.ones(tiles)
    column_gain = arrays.adc_shift[first:first + tiles, :adc]
    if not ideal:
        cycles = input_cycles(qmin, qmax, conv.dac_bits)
        vmax = max((1 << b) - 1 if not s else 1 << (b - 1) for _, b, s in cycles)
        step = adc_steps(arrays.rows_used[first:first + tiles], conv, vmax)
        lo, hi = -(2 ** (conv.adc_bits - 1)), 2 ** (conv.adc_bits - 1) - 1
        # the cycle sum of ADC codes stays exact in float32 while its bound fits the 24-bit mantissa
        bound = 2 ** (conv.adc_bits - 1) * sum(2.0 ** shift for shift, _, _ in cycles)
        sum_dtype = torch.float32 if bound < 2 ** 24 else torch.float64
        cycle_weights = torch.tensor([[2.0 ** shift for shift, _, _ in cycles]], dtype=sum_dtype)
        column_gain = column_gain * step.double().view(tiles, 1)
    if gain is not None:
        column_gain = column_gain * gain.double().view(tiles, 1)
    inverse_step = 1.0 / step
    for a, b in _row_runs(arrays.row_index[first:first + tiles, :rows]):
        k = b - a
        used = int(arrays.rows_used[first + a:first + b].max())   # the rows this run reads
        row_index = arrays.row_index[first + a, :used]
        r0 = int(row_index[0])
        contiguous = torch.equal(row_index, torch.arange(r0, r0 + used))
        weights = scratch("weights", (used, k, adc), dtype)   # [R, k * A], over the ADC steps
        torch.mul(g_eff[a:b, :used].permute(1, 0, 2), inverse_step[a:b].view(1, k, 1), out=weights)
        weights = weights.view(used, k * adc)
        flat_out = arrays.adc_out[first + a:first + b, :adc].flatten()
        run_gain = column_gain[a:b].reshape(1, k * adc)
        chunk = max(1, CHUNK_ELEMENTS // max(1, cycles_n * (used + k * adc)))
        for start in range(0, n_total, chunk):
            block = planes[:, start:start + chunk]
            n = block.shape[1]
            x = scratch("inputs", (cycles_n, n, used), dtype)   # [S, n, R]
            x.copy_(block[:, :, r0:r0 + used] if contiguous else block.index_select(2, row_index))
            current = torch.mm(x.view(cycles_n * n, used), weights, out=scratch("currents", (cycles_n * n, k * adc), dtype))
            current = current.float()
            z = scratch("sums", (n, k * adc), torch.float64)
            if ideal:
                z.copy_(current)
            else:
                current = current.round_().clamp_(lo, hi).to(sum_dtype)
                z.copy_(torch.mm(cycle_weights, current.view(cycles_n, n * k * adc)).view(n, k * adc))
            out[start:start + n].index_add_(1, flat_out, z.mul_(run_gain))

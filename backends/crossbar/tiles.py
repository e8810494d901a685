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

from backends.crossbar.mapping import LayerMapping

CHUNK_ELEMENTS = 1 << 22   # floats per matmul operand chunk: bounds peak memory per layer


@dataclass
class TileArrays:
    """Where each tile row reads its input and where each ADC column's result goes."""

    row_index: torch.Tensor   # int64 [T, R] into the flattened group inputs; sentinel -> zero input
    adc_out: torch.Tensor     # int64 [T, A] into the flattened outputs; sentinel -> discarded
    adc_shift: torch.Tensor   # float64 [T, A] 2^(cell_bits * slice), 0 where unused
    adc_slice: torch.Tensor   # int64 [T, A] the weight slice a column holds
    rows_used: torch.Tensor   # int64 [T]
    inputs: int               # groups * inputs per group (the sentinel index)
    outputs: int              # groups * outputs per group


def slice_levels(values: torch.Tensor, slices: int, cell_bits: int) -> torch.Tensor:
    """Non-negative integers [..., n] -> levels [..., n, slices] (least significant slice first)."""
    shifts = torch.arange(slices, dtype=torch.int64) * cell_bits
    return (values.unsqueeze(-1) >> shifts) & ((1 << cell_bits) - 1)


def build_arrays(mapping: LayerMapping) -> TileArrays:
    layer, spec = mapping.layer, mapping.spec
    groups, outs, ins = layer.matrices.shape
    tiles, rows, adc = mapping.tiles, spec.rows, mapping.adc_cols
    per_adc = mapping.cols_per_output // mapping.slices
    row_index = torch.full((tiles, rows), groups * ins, dtype=torch.int64)
    adc_out = torch.full((tiles, adc), groups * outs, dtype=torch.int64)
    adc_shift = torch.zeros((tiles, adc), dtype=torch.float64)
    adc_slice = torch.zeros((tiles, adc), dtype=torch.int64)
    shifts = 2.0 ** (torch.arange(mapping.slices, dtype=torch.float64) * spec.cell_bits)
    for p in mapping.pieces:
        c0, n = p.col // per_adc, len(p.outputs) * mapping.slices
        row_index[p.tile, p.row:p.row + len(p.rows)] = p.group * ins + p.rows
        adc_out[p.tile, c0:c0 + n] = (p.group * outs + p.outputs).repeat_interleave(mapping.slices)
        adc_shift[p.tile, c0:c0 + n] = shifts.repeat(len(p.outputs))
        adc_slice[p.tile, c0:c0 + n] = torch.arange(mapping.slices).repeat(len(p.outputs))
    return TileArrays(row_index, adc_out, adc_shift, adc_slice, torch.tensor(mapping.rows_used, dtype=torch.int64),
                      groups * ins, groups * outs)


def sliced_matrices(mapping: LayerMapping) -> list[torch.Tensor]:
    """The layer's cell levels as [groups, inputs, outputs * slices] uint8 tensors (column o * slices
    + k holds slice k of output o): the positive and negative parts for differential pairs, the
    offset weights for the offset encoding."""
    m, spec = mapping.layer.matrices, mapping.spec
    parts = (m.clamp(min=0), (-m).clamp(min=0)) if spec.signed == "differential" else (m + mapping.offset,)
    groups, outs, ins = m.shape
    return [slice_levels(part, mapping.slices, spec.cell_bits).to(torch.uint8).permute(0, 2, 1, 3)
            .reshape(groups, ins, outs * mapping.slices) for part in parts]


def piece_columns(mapping: LayerMapping, piece) -> torch.Tensor:
    """Columns of `sliced_matrices` a piece holds, in tile order."""
    return (piece.outputs.unsqueeze(1) * mapping.slices + torch.arange(mapping.slices)).flatten()


def target_levels(mapping: LayerMapping) -> tuple[torch.Tensor, torch.Tensor]:
    """Programmed levels (uint8): (positive, negative) [T, R, A] for differential pairs, or
    (data [T, R, A], reference [T, R, slices]) for the offset encoding."""
    spec = mapping.spec
    tiles, rows, adc, slices = mapping.tiles, spec.rows, mapping.adc_cols, mapping.slices
    per_adc = mapping.cols_per_output // slices
    sliced = sliced_matrices(mapping)
    a = torch.zeros((tiles, rows, adc), dtype=torch.uint8)
    if spec.signed == "differential":
        b = torch.zeros_like(a)
    else:  # unused cells of the used rows hold the zero weight (the offset) like the reference
        zero = slice_levels(torch.tensor([mapping.offset]), slices, spec.cell_bits)[0].to(torch.uint8)
        b = zero.expand(tiles, rows, slices).clone()
        a[:] = zero.repeat(adc // slices + 1)[:adc]
    for p in mapping.pieces:
        c0, cols = p.col // per_adc, piece_columns(mapping, p)
        for target, levels in zip((a, b), sliced):
            block = levels[p.group].index_select(0, p.rows).index_select(1, cols)
            target[p.tile, p.row:p.row + len(p.rows), c0:c0 + len(cols)] = block
    return a, b


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


def adc_steps(arrays: TileArrays, conv: Converters, vmax: int) -> torch.Tensor:
    """Per-tile ADC step: the smallest power of two whose signed range covers the partial sums."""
    worst = arrays.rows_used.double() * (conv.cell_levels - 1) * vmax * conv.adc_range
    top = 2 ** (conv.adc_bits - 1) - 1
    exponent = torch.ceil(torch.log2(torch.clamp(worst / top, min=1.0)))
    return (2.0 ** exponent).float()


def mvm(codes: torch.Tensor, qmin: int, qmax: int, arrays: TileArrays, g_eff: torch.Tensor,
        conv: Converters, gain: torch.Tensor | None = None) -> torch.Tensor:
    """codes [N, inputs] (integer-valued float32) -> acc [N, outputs] float64."""
    n_total = codes.shape[0]
    tiles, rows = arrays.row_index.shape
    adc = g_eff.shape[-1]
    padded = torch.cat([codes, codes.new_zeros(n_total, 1)], dim=1)
    ideal = conv.adc_bits == 0
    cycles = [(0, 0, False)] if ideal else input_cycles(qmin, qmax, conv.dac_bits)
    vmax = max((1 << b) - 1 if not s else 1 << (b - 1) for _, b, s in cycles) if not ideal else 1
    step = None if ideal else adc_steps(arrays, conv, vmax).view(tiles, 1, 1)
    lo, hi = (-(2 ** (conv.adc_bits - 1)), 2 ** (conv.adc_bits - 1) - 1) if not ideal else (0, 0)
    weights = torch.tensor([2.0 ** shift for shift, _, _ in cycles], dtype=torch.float64)
    column_gain = arrays.adc_shift if gain is None else arrays.adc_shift * gain.double().view(tiles, 1)
    out = torch.zeros((n_total, arrays.outputs + 1), dtype=torch.float64)
    chunk = max(1, CHUNK_ELEMENTS // max(1, tiles * len(cycles) * (rows + adc)))
    flat_rows, flat_out = arrays.row_index.flatten(), arrays.adc_out.flatten()
    for start in range(0, n_total, chunk):
        x = padded[start:start + chunk].index_select(1, flat_rows)       # [n, T * R]
        n = x.shape[0]
        x = x.view(n, tiles, rows).transpose(0, 1)                      # [T, n, R]
        if not ideal:
            xi = x.to(torch.int32)
            parts = []
            for shift, bits, signed in cycles:
                part = xi >> shift if signed else (xi >> shift) & ((1 << bits) - 1)
                parts.append(part.float())
            x = torch.cat(parts, dim=1)                                 # [T, S * n, R]
        current = torch.bmm(x.contiguous(), g_eff)                     # [T, S * n, A]
        if not ideal:
            current = torch.clamp(torch.round(current / step), lo, hi) * step
        z = (current.view(tiles, len(cycles), n, adc).double() * weights.view(1, -1, 1, 1)).sum(dim=1)
        z = z * column_gain.view(tiles, 1, adc)
        out[start:start + n].index_add_(1, flat_out, z.transpose(0, 1).reshape(n, tiles * adc))
    return out[:, :-1]

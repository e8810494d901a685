"""Programmed levels -> the conductances a read sees, with the device's non-idealities.

Per layer and per cell, from generators seeded by (seed, layer): programming noise, stuck-at
faults and drift exponents, the same on every run (the chip is programmed once); per run, from
a generator seeded once and advanced by every call: read noise. The result is the effective
conductance matrix in level units (one level = (g_max - g_min) / (levels - 1)): the pair
difference for differential columns, the data minus the reference cell for the offset encoding.
Ideal devices give the integer level differences exactly.

Everything is computed in level units (conductances divided by the level step: the clamp at zero
and the multiplicative drift and read terms do not change), and every per-cell parameter that
depends only on the cell's level (its target, programming sigma, drift exponent mean and spread,
1/f factor) is read from a table indexed by the weight *part* a tile slot holds and the slice
(`CellTables`): one lookup gives all slices of a weight, so no per-cell level index is formed.
Each noise term is one draw over all cells of a chunk of tiles (both sides of the differential
pairs at once), into scratch buffers reused from chunk to chunk (scratch.py).

Read noise of a differential pair under the constant-fraction model (ReRAM): the pair hands the
ADC ra - rb with ra = pa (1 + s n_a), rb = pb (1 + s n_b) and independent standard normals n_a,
n_b, so ra - rb = pa - pb + s sqrt(pa^2 + pb^2) n with one standard normal n: the same
distribution, drawn once per pair instead of once per cell. It holds while the clamp of a read
conductance at zero never binds (that takes n < -1/s, a 100-sigma draw at the preset's s = 1%);
it is used for s <= 1/8 (beyond 8 sigma: < 1e-15 per cell) and never for the offset encoding,
whose reference cell is shared by the columns of its row, nor for the 1/f model (PCM), whose
relative noise can reach 0.8 and is clamped per cell.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from backends.crossbar.devices import DeviceModel
from backends.crossbar.scratch import Scratch

PAIR_READ_MAX = 1.0 / 8.0  # relative read noise up to which a pair's two draws are one (module doc)


@dataclass(frozen=True)
class ReadCondition:
    time: float                # seconds since programming finished
    drift_compensation: bool   # global drift compensation per tile (Joshi et al. 2020)


def _poly(coeffs: tuple[float, ...], x: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(x)
    for c in reversed(coeffs):
        out = out * x + c
    return out


def _clamped(params: tuple[float, float, float, float], g_rel: torch.Tensor) -> torch.Tensor:
    a, b, lo, hi = params
    return torch.clamp(a * torch.log(g_rel) + b, lo, hi)


class LevelTables:
    """Everything that depends only on a cell's target level, evaluated once per level, in level
    units (conductances divided by `step`): the target conductance, the programming-noise sigma,
    the drift exponent's mean and spread and the 1/f read-noise factor (at the target)."""

    def __init__(self, device: DeviceModel, cell_levels: int):
        self.step = (device.g_max - device.g_min) / (cell_levels - 1)
        self.cell_levels = cell_levels
        g = device.g_min + torch.arange(cell_levels, dtype=torch.float32) * self.step
        g_rel = (g / device.g_max).clamp(min=1e-7)
        self.target = g / self.step
        self.prog_sigma = (_poly(device.prog_coeffs, g_rel).clamp(min=0) / self.step
                           if any(device.prog_coeffs) else None)
        drifts = any(device.drift_mu[:2]) or any(device.drift_sigma[:2])
        self.nu = (_clamped(device.drift_mu, g_rel), _clamped(device.drift_sigma, g_rel)) if drifts else None
        q_coeff, q_exp, q_max = device.read_q
        self.read_q = torch.clamp(q_coeff / g_rel.clamp(min=1e-3) ** q_exp, max=q_max) if q_coeff else None
        self.g_on, self.g_off = device.g_max / self.step, device.g_min / self.step
        self._cells: dict[tuple[int, int], CellTables] = {}

    def cells(self, values: int, slices: int) -> "CellTables":
        """The per-level tables spread over (weight part value, slice), for values 0..values-1."""
        key = (values, slices)
        if key not in self._cells:
            self._cells[key] = CellTables(self, values, slices)
        return self._cells[key]


class CellTables:
    """Per-level quantities indexed by (part value v, slice k): row v holds the slices of v
    (level (v >> k * cell_bits) & mask, least significant first), so one embedding lookup of a
    tile's part values gives every cell of its columns in column order."""

    def __init__(self, tables: LevelTables, values: int, slices: int):
        bits = (tables.cell_levels - 1).bit_length()
        shifts = torch.arange(slices, dtype=torch.int64) * bits
        levels = (torch.arange(values, dtype=torch.int64).unsqueeze(1) >> shifts) & (tables.cell_levels - 1)
        spread = lambda per_level: None if per_level is None else per_level[levels].contiguous()
        self.level = levels.float()
        self.target = spread(tables.target)
        self.prog_sigma = spread(tables.prog_sigma)
        self.nu = None if tables.nu is None else (spread(tables.nu[0]), spread(tables.nu[1]))
        self.read_q = spread(tables.read_q)
        self.g_on, self.g_off = tables.g_on, tables.g_off


def per_cell(table: torch.Tensor, parts: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """A (value, slice) table read at part values [..., P] into out [..., P * slices]."""
    torch.index_select(table, 0, parts.reshape(-1), out=out.view(-1, table.shape[1]))
    return out


def _spread(parts: torch.Tensor, cells: CellTables) -> tuple[int, ...]:
    return tuple(parts.shape[:-1]) + (parts.shape[-1] * cells.target.shape[1],)


def programmed(parts: torch.Tensor, device: DeviceModel, cells: CellTables, gen: torch.Generator,
               scratch: Scratch, name: str) -> torch.Tensor:
    """Conductance right after programming (level units): target, programming noise, stuck-at.
    The result is the scratch buffer `name`."""
    shape = _spread(parts, cells)
    g = per_cell(cells.target, parts, scratch(name, shape))
    if cells.prog_sigma is not None:
        sigma = per_cell(cells.prog_sigma, parts, scratch("sigma", shape))
        g.addcmul_(sigma, scratch("draw", shape).normal_(generator=gen)).clamp_(min=0)
    if device.stuck_on or device.stuck_off:
        u = scratch("draw", shape).uniform_(generator=gen)
        g.masked_fill_(u < device.stuck_on, cells.g_on)
        g.masked_fill_((u >= device.stuck_on) & (u < device.stuck_on + device.stuck_off), cells.g_off)
    return g


def drift(g: torch.Tensor, parts: torch.Tensor, device: DeviceModel, cells: CellTables, cond: ReadCondition,
          gen: torch.Generator, scratch: Scratch) -> torch.Tensor:
    """Power-law drift from the programmed value, in place: g ((t + t0) / t0)^-nu."""
    if cond.time > 0 and cells.nu is not None:
        mu, sigma = cells.nu
        nu = scratch("draw", g.shape).normal_(generator=gen).mul_(per_cell(sigma, parts, scratch("sigma", g.shape)))
        nu.add_(per_cell(mu, parts, scratch("sigma", g.shape))).abs_()
        g.mul_(nu.mul_(-math.log((cond.time + device.drift_t0) / device.drift_t0)).exp_())
    return g


def read(g: torch.Tensor, parts: torch.Tensor, device: DeviceModel, cells: CellTables, cond: ReadCondition,
         gen: torch.Generator, scratch: Scratch) -> torch.Tensor:
    """Read noise per cell, in place (g >= 0 on entry: programmed, stuck or drifted)."""
    if cells.read_q is not None:
        t = cond.time + device.drift_t0
        factor = math.sqrt(math.log((t + device.t_read) / (2 * device.t_read)))
        noise = scratch("draw", g.shape).normal_(generator=gen)
        g.addcmul_(g, noise.mul_(per_cell(cells.read_q, parts, scratch("sigma", g.shape))), value=factor)
    if device.read_relative:
        g.addcmul_(g.abs() if cells.read_q is not None else g, scratch("draw", g.shape).normal_(generator=gen),
                   value=device.read_relative)
    return g.clamp_(min=0)


def pair_read_combines(device: DeviceModel) -> bool:
    """Whether a differential pair's read noise is drawn once per pair (module doc)."""
    return device.read_q[0] == 0 and device.read_relative <= PAIR_READ_MAX


def effective(parts: torch.Tensor, reference: int | None, adc_slice: torch.Tensor, device: DeviceModel,
              cells: CellTables, cond: ReadCondition, gens: tuple[torch.Generator, torch.Generator, torch.Generator],
              scratch: Scratch | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(effective conductance [T, R, A] in level units, per-tile drift-compensation gain or None).

    `parts`: the weight parts of tiles.chunk_parts, [2, T, R, P] (positive, negative) for
    differential pairs, [T, R, P] (weight + offset) for the offset encoding, whose reference
    cells hold `reference` (the offset; the reference column of slice k serves every data column
    `adc_slice` gives slice k). `gens`: programming, drift and read generators (separate, so the
    same chip read at another time keeps its programming draws). The result lives in `scratch`
    (valid until its next use)."""
    scratch = scratch or Scratch()
    prog_gen, drift_gen, read_gen = gens
    if reference is None:
        sides = [(parts, None)]
    else:
        ref_parts = torch.full(parts.shape[:-1] + (1,), reference, dtype=parts.dtype)
        sides = [(parts, None), (ref_parts, adc_slice.unsqueeze(1).expand(-1, parts.shape[1], -1))]
    out_shape = _spread(parts, cells)[-3:]
    g_eff = scratch("g_eff", out_shape)
    if device.noiseless:
        levels = [per_cell(cells.level, p, scratch(f"cells{i}", _spread(p, cells))) for i, (p, _) in enumerate(sides)]
        if reference is None:
            return torch.sub(levels[0][0], levels[0][1], out=g_eff), None
        return torch.sub(levels[0], levels[1].gather(2, sides[1][1]), out=g_eff), None
    progs = [programmed(p, device, cells, prog_gen, scratch, f"cells{i}") for i, (p, _) in enumerate(sides)]
    ref = None
    if cond.drift_compensation:  # an all-ones read at t0, per tile (Joshi et al. 2020)
        pa, pb = (progs[0][0], progs[0][1]) if reference is None else (progs[0], progs[1].gather(2, sides[1][1]))
        ref = (pa - pb).sum(dim=1).abs().sum(dim=1)
    if reference is None and pair_read_combines(device):
        g = drift(progs[0], parts, device, cells, cond, drift_gen, scratch)
        torch.sub(g[0], g[1], out=g_eff)
        if device.read_relative:  # ra - rb = pa - pb + s sqrt(pa^2 + pb^2) n: one draw per pair
            norm = torch.mul(g[0], g[0], out=scratch("sigma", out_shape)).addcmul_(g[1], g[1]).sqrt_()
            g_eff.addcmul_(norm,
                           scratch("draw", out_shape).normal_(generator=read_gen), value=device.read_relative)
    else:
        reads = [read(drift(g, p, device, cells, cond, drift_gen, scratch), p, device, cells, cond, read_gen, scratch)
                 for g, (p, _) in zip(progs, sides)]
        if reference is None:
            torch.sub(reads[0][0], reads[0][1], out=g_eff)
        else:
            torch.sub(reads[0], reads[1].gather(2, sides[1][1]), out=g_eff)
    gain = None
    if ref is not None:  # ... over the all-ones read now
        now = g_eff.sum(dim=1).abs().sum(dim=1)
        gain = torch.where(now > 0, ref / now, torch.ones_like(now))
    return g_eff, gain

"""Programmed levels -> the conductances a read sees, with the device's non-idealities.

Per layer and per cell, from generators seeded by (seed, layer): programming noise, stuck-at
faults and drift exponents, the same on every run (the chip is programmed once); per run, from
a generator seeded once and advanced by every call: read noise. The result is the effective
conductance matrix in level units (one level = (g_max - g_min) / (levels - 1)): the pair
difference for differential columns, the data minus the reference cell for the offset encoding.
Ideal devices give the integer level differences exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from backends.crossbar.devices import DeviceModel


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
    """Everything that depends only on a cell's target level, evaluated once per level: the
    target conductance, the programming-noise sigma, the drift exponent's mean and spread and
    the 1/f read-noise factor (taken at the target conductance)."""

    def __init__(self, device: DeviceModel, cell_levels: int):
        self.step = (device.g_max - device.g_min) / (cell_levels - 1)
        g = device.g_min + torch.arange(cell_levels, dtype=torch.float32) * self.step
        g_rel = (g / device.g_max).clamp(min=1e-7)
        self.target = g
        self.prog_sigma = _poly(device.prog_coeffs, g_rel).clamp(min=0) if any(device.prog_coeffs) else None
        drifts = any(device.drift_mu[:2]) or any(device.drift_sigma[:2])
        self.nu = (_clamped(device.drift_mu, g_rel), _clamped(device.drift_sigma, g_rel)) if drifts else None
        q_coeff, q_exp, q_max = device.read_q
        self.read_q = torch.clamp(q_coeff / g_rel.clamp(min=1e-3) ** q_exp, max=q_max) if q_coeff else None


def programmed(index: torch.Tensor, device: DeviceModel, tables: LevelTables, gen: torch.Generator) -> torch.Tensor:
    """Conductance (µS) right after programming: target, programming noise, stuck-at faults.
    `index`: the cells' levels as int64."""
    g = tables.target[index]
    if tables.prog_sigma is not None:
        g = g.add_(tables.prog_sigma[index] * torch.randn(g.shape, generator=gen)).clamp_(min=0)
    if device.stuck_on or device.stuck_off:
        u = torch.rand(g.shape, generator=gen)
        g = torch.where(u < device.stuck_on, torch.full_like(g, device.g_max), g)
        g = torch.where((u >= device.stuck_on) & (u < device.stuck_on + device.stuck_off),
                        torch.full_like(g, device.g_min), g)
    return g


def read(g_prog: torch.Tensor, index: torch.Tensor, device: DeviceModel, tables: LevelTables,
         cond: ReadCondition, drift_gen: torch.Generator, read_gen: torch.Generator) -> torch.Tensor:
    """Conductance at read time: power-law drift from the programmed value, then read noise."""
    g = g_prog
    if cond.time > 0 and tables.nu is not None:
        mu, sigma = tables.nu
        nu = (mu[index] + sigma[index] * torch.randn(g.shape, generator=drift_gen)).abs_()
        g = g * torch.exp(-nu * math.log((cond.time + device.drift_t0) / device.drift_t0))
    if tables.read_q is not None:
        t = cond.time + device.drift_t0
        factor = math.sqrt(math.log((t + device.t_read) / (2 * device.t_read)))
        g = g + g.abs() * tables.read_q[index] * factor * torch.randn(g.shape, generator=read_gen)
    if device.read_relative:
        g = g + device.read_relative * g.abs() * torch.randn(g.shape, generator=read_gen)
    return g.clamp_(min=0)


def effective(a: torch.Tensor, b: torch.Tensor, adc_slice: torch.Tensor, offset: bool, device: DeviceModel,
              tables: LevelTables, cond: ReadCondition,
              gens: tuple[torch.Generator, torch.Generator, torch.Generator]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(effective conductance [T, R, A] in level units, per-tile drift-compensation gain or None).

    `a`, `b`: programmed levels from tiles.target_levels (with `offset`, b is [T, R, slices]: its
    column for slice k serves every data column of that slice). `gens`: programming, drift and
    read generators (separate, so the same chip read at another time keeps its programming draws)."""
    prog_gen, drift_gen, read_gen = gens
    index = adc_slice.unsqueeze(1).expand(-1, a.shape[1], -1) if offset else None
    if device.noiseless:
        return a.float() - (b.float().gather(2, index) if offset else b.float()), None
    sides = []
    for levels in (a, b):
        cells = levels.long()
        g_prog = programmed(cells, device, tables, prog_gen)
        sides.append((g_prog, read(g_prog, cells, device, tables, cond, drift_gen, read_gen)))
    (pa, ra), (pb, rb) = sides
    if offset:
        pb, rb = pb.gather(2, index), rb.gather(2, index)
    g_eff = (ra - rb).div_(tables.step)
    gain = None
    if cond.drift_compensation:  # an all-ones read at t0 and now, per tile (Joshi et al. 2020)
        ref = ((pa - pb) / tables.step).sum(dim=1).abs().sum(dim=1)
        now = g_eff.sum(dim=1).abs().sum(dim=1)
        gain = torch.where(now > 0, ref / now, torch.ones_like(now))
    return g_eff, gain

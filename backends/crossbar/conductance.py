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


def programmed(levels: torch.Tensor, device: DeviceModel, cell_levels: int, gen: torch.Generator) -> torch.Tensor:
    """Conductance (µS) right after programming: target, programming noise, stuck-at faults."""
    step = (device.g_max - device.g_min) / (cell_levels - 1)
    g = device.g_min + levels.float() * step
    if any(device.prog_coeffs):
        sigma = _poly(device.prog_coeffs, g / device.g_max).clamp(min=0)
        g = (g + sigma * torch.randn(g.shape, generator=gen)).clamp(min=0)
    if device.stuck_on or device.stuck_off:
        u = torch.rand(g.shape, generator=gen)
        g = torch.where(u < device.stuck_on, torch.full_like(g, device.g_max), g)
        g = torch.where((u >= device.stuck_on) & (u < device.stuck_on + device.stuck_off),
                        torch.full_like(g, device.g_min), g)
    return g


def read(g_prog: torch.Tensor, target: torch.Tensor, device: DeviceModel, cond: ReadCondition,
         drift_gen: torch.Generator, read_gen: torch.Generator) -> torch.Tensor:
    """Conductance at read time: power-law drift from the programmed value, then read noise."""
    g = g_prog
    g_rel = (target / device.g_max).clamp(min=1e-7)
    if cond.time > 0 and (any(device.drift_mu[:2]) or any(device.drift_sigma[:2])):
        nu = (_clamped(device.drift_mu, g_rel) + _clamped(device.drift_sigma, g_rel)
              * torch.randn(g.shape, generator=drift_gen)).abs()
        g = g * ((cond.time + device.drift_t0) / device.drift_t0) ** (-nu)
    if device.read_q[0]:
        q_coeff, q_exp, q_max = device.read_q
        t = cond.time + device.drift_t0
        q = torch.clamp(q_coeff / (g_prog / device.g_max).abs().clamp(min=1e-3) ** q_exp, max=q_max)
        sigma = g.abs() * q * math.sqrt(math.log((t + device.t_read) / (2 * device.t_read)))
        g = g + sigma * torch.randn(g.shape, generator=read_gen)
    if device.read_relative:
        g = g + device.read_relative * g.abs() * torch.randn(g.shape, generator=read_gen)
    return g.clamp(min=0)


def effective(a: torch.Tensor, b: torch.Tensor, adc_slice: torch.Tensor, offset: bool, device: DeviceModel,
              cell_levels: int, cond: ReadCondition, gens: tuple[torch.Generator, torch.Generator, torch.Generator],
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(effective conductance [T, R, A] in level units, per-tile drift-compensation gain or None).

    `a`, `b`: programmed levels from tiles.target_levels (with `offset`, b is [T, R, slices]: its
    column for slice k serves every data column of that slice). `gens`: programming, drift and
    read generators (separate, so the same chip read at another time keeps its programming draws)."""
    prog_gen, drift_gen, read_gen = gens
    if device.noiseless:
        a_f = a.float()
        b_f = b.float() if not offset else b.float().gather(2, adc_slice.unsqueeze(1).expand(-1, a.shape[1], -1))
        return a_f - b_f, None
    step = (device.g_max - device.g_min) / (cell_levels - 1)
    sides = []
    for levels in (a, b):
        target = device.g_min + levels.float() * step
        g_prog = programmed(levels, device, cell_levels, prog_gen)
        sides.append((g_prog, read(g_prog, target, device, cond, drift_gen, read_gen)))
    (pa, ra), (pb, rb) = sides
    if offset:
        index = adc_slice.unsqueeze(1).expand(-1, a.shape[1], -1)
        pb, rb = pb.gather(2, index), rb.gather(2, index)
    g_eff = (ra - rb) / step
    gain = None
    if cond.drift_compensation:  # an all-ones read at t0 and now, per tile (Joshi et al. 2020)
        ref = ((pa - pb) / step).sum(dim=1).abs().sum(dim=1)
        now = g_eff.sum(dim=1).abs().sum(dim=1)
        gain = torch.where(now > 0, ref / now, torch.ones_like(now))
    return g_eff, gain

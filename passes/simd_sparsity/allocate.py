"""Latency-constrained sparsity allocation: which density each layer gets under a latency budget.

The problem (ALCS, arXiv 2109.00170) is

    minimise   sum_l removed_l(d_l)              importance of the groups each layer loses
    subject to rest + sum_l latency_l(d_l) <= budget

with latency_l the layer's piecewise-linear model (torch's dense kernel at d = 1) and removed_l
the sum of its least important group scores. The paper relaxes it with ADMM; it separates over
layers, so on a grid of densities per layer it is a multiple-choice knapsack that dynamic
programming solves exactly: latencies are rounded *up* to 1/`bins` of the budget (so the
rounded solution always meets the real budget) and the table keeps, for every budget prefix, the
least importance removed. The result is the global optimum over the grid (up to that rounding),
so no ADMM run on the same grid reaches a lower objective. `uniform` is the baseline: the
densest single density for every layer that meets the same budget.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from compiler.errors import NNForgeError


class BudgetError(NNForgeError):
    """The latency budget cannot be met."""


@dataclass(frozen=True)
class LayerChoices:
    """Per candidate density: predicted milliseconds and importance removed."""

    densities: np.ndarray
    latency_ms: np.ndarray
    removed: np.ndarray


@dataclass(frozen=True)
class Allocation:
    densities: list[float]
    predicted_ms: float
    removed: float


def allocate(layers: Sequence[LayerChoices], rest_ms: float, budget_ms: float, dense_ms: float,
             bins: int = 8000) -> Allocation:
    """The least-importance-removed choice meeting `budget_ms` (exact over the density grid)."""
    floor = rest_ms + sum(float(c.latency_ms.min()) for c in layers)
    if budget_ms < floor:
        fraction = math.ceil(floor / dense_ms * 1000) / 1000
        raise BudgetError(f"latency budget {budget_ms:.3f} ms is below what the sparsest allowed layers reach: "
                          f"{floor:.3f} ms ({floor / dense_ms:.3f} of the dense {dense_ms:.3f} ms)",
                          hint=f"ask for at least {floor:.3f} ms (latency-budget={fraction})"
                               ", or allow sparser layers with a higher max-sparsity")
    step = (budget_ms - rest_ms) / bins
    best = np.zeros(bins + 1)  # least removed importance within b bins of latency, over the layers so far
    picks = np.zeros((len(layers), bins + 1), dtype=np.int32)
    for i, choice in enumerate(layers):
        cost = np.ceil(choice.latency_ms / step - 1e-9).astype(np.int64)
        merged = np.full(bins + 1, np.inf)
        for j in np.flatnonzero(cost <= bins):
            candidate = np.full(bins + 1, np.inf)
            candidate[cost[j]:] = best[:bins + 1 - cost[j]] + choice.removed[j]
            better = candidate < merged
            merged[better], picks[i, better] = candidate[better], j
        best = merged
    if not np.isfinite(best[bins]):  # only the rounding of a budget at the very floor
        raise BudgetError(f"latency budget {budget_ms:.3f} ms is too close to the reachable minimum {floor:.3f} ms",
                          hint="raise the budget slightly")
    chosen, b = [], bins
    for i in reversed(range(len(layers))):
        j = picks[i, b]
        chosen.append(j)
        b -= int(np.ceil(layers[i].latency_ms[j] / step - 1e-9))
    chosen.reverse()
    return Allocation([float(c.densities[j]) for c, j in zip(layers, chosen)],
                      rest_ms + sum(float(c.latency_ms[j]) for c, j in zip(layers, chosen)),
                      sum(float(c.removed[j]) for c, j in zip(layers, chosen)))


def uniform(layers: Sequence[LayerChoices], rest_ms: float, budget_ms: float) -> Allocation | None:
    """The highest density shared by every layer's grid whose prediction meets the budget."""
    shared = sorted(set.intersection(*(set(np.round(c.densities, 6)) for c in layers)), reverse=True)
    for density in shared:
        js = [int(np.flatnonzero(np.isclose(c.densities, density))[0]) for c in layers]
        total = rest_ms + sum(float(c.latency_ms[j]) for c, j in zip(layers, js))
        if total <= budget_ms:
            return Allocation([density] * len(layers), total,
                              sum(float(c.removed[j]) for c, j in zip(layers, js)))
    return None

"""Which units go: ratios per group (local) or one threshold over all groups (global), rounding.

Per group, `keep` units stay: `int(n * (1 - ratio))`, rounded down to a multiple of the group's
step (at least one step, never zero). The step makes every weight dim the group touches a
multiple of `round_to`: a unit that occupies r indices of a dim (a head of 64 channels, a channel
flattened over 49 positions) needs `round_to / gcd(round_to, r)` units per step.
"""
from __future__ import annotations

import math

import numpy as np

from compiler.names import layer_names, name_matches
from passes.prune.groups import Analysis, Group


def group_step(analysis: Analysis, group: Group, round_to: int) -> int:
    if round_to <= 1:
        return 1
    step = 1
    for i in group.sites:
        site = analysis.sites[i]
        if not any(v.is_param and v.rank >= 2 for v, _ in analysis.weight_members(site)):
            continue
        units = site.units[site.units >= 0]
        positions = int(np.count_nonzero(analysis.unit_group[units] == group.index))
        per_unit = max(1, positions // group.size)
        need = round_to // math.gcd(round_to, per_unit)
        step = step * need // math.gcd(step, need)
    return step


def kept_count(n: int, ratio: float, step: int) -> int:
    keep = int(n * (1.0 - ratio) + 1e-9)
    keep -= keep % step
    if keep < step:
        keep = step if n >= step else n
    return max(1, min(n, keep))


def group_ratio(analysis: Analysis, group: Group, ratio: float, ratios: dict[str, float]) -> tuple[float, bool]:
    """The ratio for a group: that of the first `ratios` pattern naming one of its layers."""
    if not ratios:
        return ratio, False
    members = [(v, d) for i in group.sites for v, d in analysis.weight_members(analysis.sites[i])]
    members.sort(key=lambda m: m[1] != 0)  # layers whose outputs are the group first
    for v, _ in members:
        for user in v.users:
            names = layer_names(user)
            for pattern, r in ratios.items():
                if name_matches(pattern, names):
                    return r, True
    return ratio, False


def group_key(analysis: Analysis, group: Group) -> tuple[str, int]:
    """A name for a group that survives pruning: its first weight (by name) and dim."""
    return min(((v.name, d) for i in group.sites for v, d in analysis.weight_members(analysis.sites[i], False)),
               default=("", group.index))


def choose(analysis: Analysis, scores: np.ndarray, *, ratio: float, scope: str = "local",
           round_to: int = 1, ratios: dict[str, float] | None = None,
           original: dict[tuple[str, int], int] | None = None) -> np.ndarray:
    """A boolean mask over units: True for the units to remove.

    Ratios are fractions of `original` group sizes (by `group_key`; the current sizes when
    absent), so iterative pruning in steps ends where one-shot pruning does.
    """
    original = original or {}
    removed = np.zeros(analysis.num_units, dtype=bool)
    pooled: list[tuple[Group, int]] = []
    total0 = 0
    for group in analysis.groups:
        if not group.prunable:
            continue
        r, overridden = group_ratio(analysis, group, ratio, ratios or {})
        step = group_step(analysis, group, round_to)
        n0 = max(group.size, original.get(group_key(analysis, group), group.size))
        if scope == "global" and not overridden:
            pooled.append((group, step))
            total0 += n0
            continue
        _drop_lowest(removed, group, scores, group.size - min(group.size, kept_count(n0, r, step)))
    if pooled:
        units = np.concatenate([g.units for g, _ in pooled])
        n_remove = len(units) - int(total0 * (1.0 - ratio) + 1e-9)
        if n_remove > 0:
            order = units[np.argsort(scores[units], kind="stable")]
            marked = np.zeros(analysis.num_units, dtype=bool)
            marked[order[:n_remove]] = True
            for group, step in pooled:
                n = group.size
                keep = n - int(np.count_nonzero(marked[group.units]))
                keep = max(keep - keep % step, step if n >= step else n, 1)
                _drop_lowest(removed, group, scores, n - keep)
    return removed


def _drop_lowest(removed: np.ndarray, group: Group, scores: np.ndarray, count: int) -> None:
    if count > 0:
        order = group.units[np.argsort(scores[group.units], kind="stable")]
        removed[order[:count]] = True

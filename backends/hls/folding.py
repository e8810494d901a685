"""The folding solver: PE and SIMD per stage for a target frame rate, or the fastest that fits.

The design's throughput is set by its slowest stage (clock / max cycles per frame). For a target
of T cycles per frame every stage takes its cheapest (PE, SIMD) whose cycles are at most T, the
cost being the sum of its resources as fractions of the part's (DSP, LUT, BRAM18, URAM); a conv
or linear layer folds its window generator together with its matrix-vector unit. The design fits
when every resource stays within `UTILIZATION` of the part. With a target fps, T = clock / fps;
without one, the smallest T that fits is found by bisection over the cycle counts the stages can
take. Either way the result names what binds the fastest design that fits: the resource the next
faster design would exceed, or the stage that cannot go faster.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from backends.hls.build import Design, size_fifos
from backends.hls.parts import Part
from backends.hls.resources import Resources, total
from backends.hls.stages import MVU, LineBufferWindow, Splitter, Stage
from compiler.errors import BackendError

UTILIZATION = 0.8       # of each resource; the rest is for the platform shell and routing
KINDS = ("DSP", "LUT", "BRAM18", "URAM")


@dataclass
class Folding:
    cycles: int                 # of the slowest stage: the design's initiation interval
    fps: float
    binding: str                # what stops a faster design
    totals: Resources
    requested_fps: float | None
    fastest_fps: float          # of the fastest design that fits (the one `binding` describes)


class _Unit:
    """A stage with its options sorted by cycles and the cheapest option up to each cycle count."""

    def __init__(self, stage: Stage, part: Part):
        self.stage = stage
        window = stage.window_stage if isinstance(stage, MVU) else None
        budget = part.budget()
        rows = []
        for pe, simd in stage.fold_options():
            cycles = stage.cycles(pe, simd)
            res = stage.resources(part, pe, simd)
            if window is not None:
                cycles = max(cycles, window.cycles(pe, simd))
                res = res + window.resources(part, pe, simd)
            used = res.as_dict()
            cost = sum(used[k] / budget[k] if budget[k] else (math.inf if used[k] else 0.0) for k in KINDS)
            rows.append((cycles, cost, pe, simd, res))
        rows.sort(key=lambda r: (r[0], r[1]))
        self.cycles = [r[0] for r in rows]
        self.rows = rows
        self.best_upto: list[int] = []           # index of the cheapest row among rows[:i + 1]
        for i, r in enumerate(rows):
            prev = self.best_upto[-1] if self.best_upto else None
            self.best_upto.append(i if prev is None or r[1] < rows[prev][1] else prev)

    @property
    def fastest(self) -> int:
        return self.cycles[0]

    def choose(self, target: int):
        i = bisect.bisect_right(self.cycles, target) - 1
        return None if i < 0 else self.rows[self.best_upto[i]]


def _is_coupled(stage: Stage) -> bool:
    return isinstance(stage, (LineBufferWindow, Splitter))


def _fits(units: list[_Unit], target: int, part: Part):
    choice = [u.choose(target) for u in units]
    if any(c is None for c in choice):
        return False, choice, None, "stage"
    used = total(c[4] for c in choice).as_dict()
    budget = part.budget()
    over = [k for k in KINDS if used[k] > UTILIZATION * budget[k]]
    return not over, choice, used, (max(over, key=lambda k: used[k] / max(1, budget[k])) if over else "")


def _why_not(units: list[_Unit], target: int, part: Part) -> str:
    ok, _, used, kind = _fits(units, target, part)
    if kind == "stage":
        slow = max(units, key=lambda u: u.fastest)
        stage, (_, _, pe, simd, _) = slow.stage, slow.rows[0]
        window = stage.window_stage if isinstance(stage, MVU) else None
        why = " (its window generator reads one pixel per cycle)" \
            if window is not None and window.cycles(pe, simd) >= stage.cycles(pe, simd) else ""
        return f"stage '{stage.name}' ({stage.describe()}) at its fastest, {slow.fastest:,} cycles per frame{why}"
    if not kind:
        return "nothing: a faster design fits as well"
    budget = part.budget()
    return f"{kind} ({used[kind]:,} of {budget[kind]:,} on {part.name}, limit {UTILIZATION:.0%})"


def solve(design: Design, part: Part, clock_mhz: float, fps: float | None) -> Folding:
    """Fold every stage of `design` in place and return the throughput and what binds it."""
    units = [_Unit(s, part) for s in design.stages if not _is_coupled(s)]
    floor = max(u.fastest for u in units)
    candidates = sorted({c for u in units for c in u.cycles if c >= floor})
    clock = clock_mhz * 1e6
    best = _fastest(units, candidates, part)
    if best is None:
        raise BackendError(f"target 'hls': the design does not fit {part.name} even fully folded: "
                           f"{_why_not(units, candidates[-1], part)}",
                           hint="choose a larger part= or quantize to fewer bits")
    faster = [c for c in candidates if c < best]
    binding = _why_not(units, faster[-1] if faster else floor - 1, part)
    target = best
    if fps:
        target = math.floor(clock / fps)
        if target < best:
            raise BackendError(
                f"target 'hls': {fps:,.10g} fps at {clock_mhz:g} MHz ({target:,} cycles per frame) is not reachable on "
                f"{part.name}: the best reachable is {clock / best:,.1f} fps; bound by {binding}",
                hint="lower fps=, raise clock-mhz=, choose a larger part=, or quantize to fewer bits")
    _, choice, _, _ = _fits(units, target, part)
    for unit, (_, _, pe, simd, _) in zip(units, choice):
        unit.stage.pe, unit.stage.simd = pe, simd
        if isinstance(unit.stage, MVU):
            finalize_window(unit.stage)
    size_fifos(design)
    cycles = max(s.cycles() for s in design.stages)
    totals = total(s.resources(part) for s in design.stages)
    return Folding(cycles, clock / cycles, binding, totals, fps, clock / best)


def _fastest(units: list[_Unit], candidates: list[int], part: Part) -> int | None:
    lo, hi = 0, len(candidates) - 1
    if not candidates or not _fits(units, candidates[hi], part)[0]:
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if _fits(units, candidates[mid], part)[0]:
            hi = mid
        else:
            lo = mid + 1
    return candidates[lo]


def finalize_window(mvu: MVU) -> None:
    """The window stream's word width and length follow the unit's folding."""
    g, link, window = mvu.geometry, mvu.inputs[0], mvu.window_stage
    window.pe, window.simd = mvu.pe, mvu.simd
    if isinstance(window, LineBufferWindow):
        window.rows_inner = mvu.rows_inner
    link.channels = mvu.simd if g.groups == 1 else mvu.pe * mvu.simd
    link.height, link.width = 1, g.out_pixels * g.words_per_window(mvu.pe, mvu.simd)

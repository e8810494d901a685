"""On-chip buffers and off-chip traffic per frame under three schedules.

* layer by layer: every stage reads its input maps from off-chip memory and writes its output
  maps back (the usual accelerator that holds one layer at a time);
* line-buffer streaming (hls4ml/FINN dataflow): the stages of a group run concurrently, maps
  flow between them through line buffers (kernel height - 1 rows each, plus FIFOs for skip
  connections), and every weight of the group stays on chip, because each output pixel needs
  all of them;
* fused blocks (block convolution): a group runs one tile at a time through all its stages;
  a tile is one block of the group's coarsest grid (every stage's grid is a multiple of it), so
  tiles are independent and no halo is exchanged. The buffer holds the tile's live maps (input,
  output, and skip tensors still to be read); weights stay on chip when they fit beside it, and
  are otherwise streamed once per tile.

Groups are contiguous runs of stages grown greedily while the buffer fits `budget` bytes. A map
crossing a group boundary is written once and read once by every group that reads it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from passes.block_conv.stages import StageGraph

SCHEDULES = ("layer", "line", "fused")
TITLES = {"layer": "layer by layer", "line": "line-buffer streaming", "fused": "fused blocks"}


@dataclass
class Group:
    stages: list[int]
    grid: tuple[int, int] = (1, 1)
    buffer: float = 0.0          # on-chip bytes the group needs
    weights_on_chip: bool = True
    fits: bool = True            # False: one stage alone exceeds the budget

    @property
    def tiles(self) -> int:
        return self.grid[0] * self.grid[1]


@dataclass
class Schedule:
    name: str
    groups: list[Group]
    stage_in: list[float] = field(default_factory=list)      # off-chip bytes read, per stage
    stage_out: list[float] = field(default_factory=list)     # off-chip bytes written, per stage
    stage_buffer: list[float] = field(default_factory=list)  # on-chip bytes at the stage
    weight_traffic: float = 0.0

    @property
    def traffic(self) -> float:
        """Feature-map bytes crossing the chip boundary per frame."""
        return sum(self.stage_in) + sum(self.stage_out)

    @property
    def peak_buffer(self) -> float:
        """The largest buffer of a group that fits (one that does not runs layer by layer)."""
        return max((g.buffer for g in self.groups if g.fits), default=0.0)

    @property
    def fused_groups(self) -> list[Group]:
        return [g for g in self.groups if len(g.stages) > 1]


class Analysis:
    """The three schedules of one stage graph under one budget (bytes)."""

    def __init__(self, sg: StageGraph, budget: float):
        self.sg, self.budget = sg, budget
        self.index = {s.index: s for s in sg.stages}
        self.schedules = {"layer": self._layer_by_layer(), "line": self._greedy("line"),
                          "fused": self._greedy("fused")}

    # ---- grouping -------------------------------------------------------------------------
    def _layer_by_layer(self) -> Schedule:
        groups = [Group([s.index], buffer=0.0) for s in self.sg.stages]
        return self._finish("layer", groups)

    def _greedy(self, kind: str) -> Schedule:
        groups: list[Group] = []
        current: list[int] = []
        for stage in self.sg.stages:
            trial = current + [stage.index]
            if current and self._need(kind, trial) > self.budget:
                groups.append(self._group(kind, current))
                trial = [stage.index]
            current = trial
        if current:
            groups.append(self._group(kind, current))
        return self._finish(kind, groups)

    def _group(self, kind: str, members: list[int]) -> Group:
        need = self._need(kind, members)
        if need > self.budget:  # one stage alone: it runs layer by layer, its weights read once
            return Group(members, (1, 1), need, True, False)
        group = Group(members, self.grid(members) if kind == "fused" else (1, 1), need)
        if kind == "fused":
            weights = sum(self.index[i].weight_bytes for i in members)
            group.weights_on_chip = need + weights <= self.budget
            group.buffer = need + weights if group.weights_on_chip else need
        return group

    def _need(self, kind: str, members: list[int]) -> float:
        return self.line_buffer(members) if kind == "line" else self.tile_buffer(members)[0]

    # ---- buffers ----------------------------------------------------------------------------
    def grid(self, members: list[int]) -> tuple[int, int]:
        """The coarsest grid every member's blocks nest in (1x1: whole maps)."""
        grids = [self.index[i].grid for i in members if self.index[i].layer is not None]
        return (math.gcd(*(g[0] for g in grids)), math.gcd(*(g[1] for g in grids))) if grids else (1, 1)

    def _live_spans(self, members: list[int]):
        """(value bytes, first stage, last stage) of every map the group keeps on chip."""
        lo, hi = members[0], members[-1]
        for v, (producer, consumers) in self.sg.edges.items():
            inside = [c for c in consumers if lo <= c <= hi]
            produced = lo <= producer <= hi
            if not inside and not produced:
                continue
            start = producer if produced else min(inside)
            end = max(inside + ([producer] if produced else []))
            yield self.sg.bytes_of(v), v, start, end

    def tile_buffer(self, members: list[int]) -> tuple[float, dict[int, float]]:
        """Peak on-chip bytes of one tile, and the live bytes at each member stage."""
        gh, gw = self.grid(members)
        live = dict.fromkeys(members, 0.0)
        for size, _, start, end in self._live_spans(members):
            for s in range(start, end + 1):
                live[s] += size / (gh * gw)
        return max(live.values()), live

    def line_buffer(self, members: list[int]) -> float:
        """Line buffers and weights of every member, plus FIFOs holding skip connections."""
        total = sum(self.index[i].line_bytes + self.index[i].weight_bytes for i in members)
        for size, v, start, end in self._live_spans(members):
            if end - start > 1:
                rows = 1 + sum(self.index[s].line_rows for s in range(start + 1, end))
                total += size * min(1.0, rows / v.shape[2]) if v.rank == 4 else size
        return total

    # ---- traffic ----------------------------------------------------------------------------
    def _finish(self, kind: str, groups: list[Group]) -> Schedule:
        n = len(self.sg.stages)
        schedule = Schedule(kind, groups, [0.0] * n, [0.0] * n, [0.0] * n)
        group_of = {s: gi for gi, g in enumerate(groups) for s in g.stages}
        for v, (producer, consumers) in self.sg.edges.items():
            size = self.sg.bytes_of(v)
            readers = {}
            for c in sorted(consumers):
                if producer < 0 or group_of[c] != group_of[producer]:
                    readers.setdefault(group_of[c], c)
            for c in readers.values():
                schedule.stage_in[c] += size
            if producer >= 0 and (readers or v in self.sg.outputs):
                schedule.stage_out[producer] += size
        for g in groups:
            if kind == "fused":
                _, live = self.tile_buffer(g.stages)
                for s, b in live.items():
                    schedule.stage_buffer[s] = b
            elif kind == "line":
                for s in g.stages:
                    schedule.stage_buffer[s] = self.index[s].line_bytes + self.index[s].weight_bytes
            weights = sum(self.index[s].weight_bytes for s in g.stages)
            schedule.weight_traffic += weights if g.weights_on_chip else weights * g.tiles
        return schedule


def analyze(sg: StageGraph, budget_bytes: float) -> Analysis:
    return Analysis(sg, budget_bytes)

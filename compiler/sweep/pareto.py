"""Pareto fronts of a sweep: which points no other point beats on both of two metrics.

`fronts(rows)` chooses the plots the rows can fill: accuracy against model size, and for each
target accuracy against its speed (throughput where it has one, else latency) and its energy.
Without accuracy (no evaluation callable) each target's cost is plotted against model size
instead. A metric absent from every row gives no plot.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

LOWER, HIGHER = "lower", "higher"


@dataclass(frozen=True)
class Axis:
    column: str
    better: str       # LOWER or HIGHER
    label: str


@dataclass(frozen=True)
class Front:
    title: str
    x: Axis
    y: Axis
    members: tuple[int, ...]     # row positions on the front, in order of x


def pareto(rows: Sequence[dict[str, Any]], x: Axis, y: Axis) -> tuple[int, ...]:
    """Positions of the rows no other row dominates (at least as good on both axes, better on
    one); rows missing either value take no part. Sorted by x."""
    sign = {LOWER: 1.0, HIGHER: -1.0}
    scored = [(sign[x.better] * float(r[x.column]), sign[y.better] * float(r[y.column]), i)
              for i, r in enumerate(rows) if is_number(r.get(x.column)) and is_number(r.get(y.column))]
    scored.sort()
    members, best_y = [], float("inf")
    for cx, cy, i in scored:   # best x first; a row joins when it beats every better-x row on y
        if cy < best_y:
            members.append(i)
            best_y = cy
    return tuple(sorted(members, key=lambda i: float(rows[i][x.column])))


def is_number(value: Any) -> bool:
    """A real number: not None, a bool, text or NaN."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _present(rows: Sequence[dict[str, Any]], column: str) -> bool:
    return any(is_number(r.get(column)) for r in rows)


def targets_of(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Target names in the order their columns first appear (`onnx.latency_s` -> onnx)."""
    names: list[str] = []
    for row in rows:
        for column in row:
            if "." in column and column.split(".", 1)[1] in COST_AXES and column.split(".", 1)[0] not in names:
                names.append(column.split(".", 1)[0])
    return names


COST_AXES = {
    "throughput_fps": (HIGHER, "throughput (samples/s)"),
    "latency_s": (LOWER, "latency per batch (s)"),
    "energy_j": (LOWER, "energy per batch (J)"),
}
SIZE = Axis("weight_bits", LOWER, "model size (weight bits)")


def fronts(rows: Sequence[dict[str, Any]]) -> list[Front]:
    plots: list[tuple[str, Axis, Axis]] = []
    if _present(rows, "accuracy"):
        plots.append(("accuracy vs model size", SIZE, Axis("accuracy", HIGHER, "accuracy (IR)")))
    for target in targets_of(rows):
        accuracy = f"{target}.accuracy" if _present(rows, f"{target}.accuracy") else "accuracy"
        y = Axis(accuracy, HIGHER, f"accuracy ({target})") if _present(rows, accuracy) else SIZE
        speed = "throughput_fps" if _present(rows, f"{target}.throughput_fps") else "latency_s"
        for metric in (speed, "energy_j"):
            column = f"{target}.{metric}"
            if _present(rows, column):
                better, label = COST_AXES[metric]
                title = f"{target}: {'accuracy' if y is not SIZE else 'model size'} vs {metric.split('_')[0]}"
                plots.append((title, Axis(column, better, f"{target} {label}"), y))
    return [Front(title, x, y, pareto(rows, x, y)) for title, x, y in plots]

"""The unified cost report as a terminal table: one row for the IR, one per target."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from compiler.costs import COLUMNS, CostReport

HIDDEN = ("name", "target", "basis", "runtime")
SI = {"latency_s": "s", "energy_j": "J"}


def format_cost(column: str, value: Any) -> str:
    """A cell: SI prefixes for seconds and joules, thousands for counts, 2 decimals for metrics."""
    if value is None:
        return "-"
    if isinstance(value, str) or isinstance(value, bool):
        return str(value)
    if column in SI:
        return si(value, SI[column])
    if column == "weight_bits":
        return f"{value / 8 / 1024:.1f} KiB"
    if column == "utilisation":
        return f"{100 * value:.1f}%"
    if isinstance(value, int) or column in ("throughput_fps", "parameters", "macs"):
        return f"{value:,.0f}"
    return f"{value:.4g}" if column in COLUMNS and column != "accuracy" else f"{value:.2f}"


def si(value: float, unit: str) -> str:
    for scale, prefix in ((1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, "")):
        if abs(value) < scale * 1000:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def print_costs(console: Console, report: CostReport) -> None:
    sections = {"IR": report.model, **{s.get("target", n): s for n, s in report.targets.items()}}
    columns: list[str] = []
    for section in sections.values():
        columns += [k for k in section if k not in HIDDEN and k not in columns]
    order = [k for k in COLUMNS if k in columns] + [k for k in columns if k not in COLUMNS]
    # one column per target, one row per quantity: the table stays readable however many columns
    # the targets fill in (an FPGA's resources, a crossbar's tiles) on an 80-column terminal
    table = Table(title="costs", title_justify="left")
    table.add_column("", no_wrap=True)
    for label in sections:
        table.add_column(escape(label), justify="right", no_wrap=True)
    for column in order:
        table.add_row(column.replace("_", " "),
                      *[format_cost(column, s[column]) if column in s else "" for s in sections.values()])
    console.print(table)
    for label, section in sections.items():
        notes = {}
        for column, how in section.get("basis", {}).items():
            if not how.startswith("counted from the IR"):
                notes.setdefault(how, []).append(column)
        for how, cols in notes.items():
            console.print(f"[bold]{escape(label)}[/] {', '.join(cols)}: {escape(how)}", highlight=False)

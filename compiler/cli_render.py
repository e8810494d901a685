"""Rich tables and progress for the CLI (kept apart from the command logic)."""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
from typing import Iterator

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from compiler.ir import Graph
from compiler.metrics import node_macs
from compiler.options import describe_type, format_value, option_fields
from compiler.printer import format_type
from compiler.report import Report


def human(n: float) -> str:
    for unit in ("", "K", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.4g}{unit}"
        n /= 1000
    return f"{n:.4g}P"


@contextlib.contextmanager
def progress(console: Console) -> Iterator:
    """A spinner naming the running stage; yields the manager's on_pass callback."""
    with console.status("importing model...") as status:
        def on_pass(index: int, p) -> None:
            status.update(f"pass {index + 1}: {p}")
        yield on_pass


def print_report(console: Console, report: Report) -> None:
    facts = report.model.get("import", {})
    if "capture" in facts:
        others = "; ".join(f"{k}: {facts[k]}" for k in ("export", "fx") if k in facts)
        console.print(f"captured with torch.{facts['capture']} (capture={facts['requested']}; {others})",
                      highlight=False)
    for note in report.model.get("notes", ()):
        console.print(f"[bold]note:[/] {escape(note)}", highlight=False)
    table = Table(title="passes", title_justify="left")
    for col in ("pass", "seconds", "verify s", "nodes", "params", "MACs", "max abs diff"):
        table.add_column(col, justify="left" if col == "pass" else "right", no_wrap=True)
    for p in report.passes:
        diff = "" if p.max_abs_diff is None else f"{p.max_abs_diff:.2e}"
        table.add_row(p.name, f"{p.seconds:.3f}", f"{p.verify_seconds:.3f}",
                      f"{p.nodes_before}->{p.nodes_after}", f"{human(p.params_before)}->{human(p.params_after)}",
                      f"{human(p.macs_before)}->{human(p.macs_after)}", diff)
    console.print(table)
    for p in report.passes:
        if p.stats:
            console.print(f"{p.name}: " + ", ".join(f"{k}={v}" for k, v in p.stats.items()), highlight=False)
    for row in report.artifacts:
        diff = f", max abs diff vs IR {row['max_abs_diff']:.2e}" if "max_abs_diff" in row else ""
        if row.get("runtime") not in (None, "onnxruntime"):
            diff += f" (run by {row['runtime']})"
        if "equivalence" in row:
            diff += f", equivalence check {row['equivalence']}"
        where = row["output"] or "(in memory)"
        console.print(f"[bold]{row['target']}[/] -> {escape(str(where))} in {row['seconds']:.3f} s{escape(diff)}",
                      highlight=False)
    checked = any(p.max_abs_diff is not None for p in report.passes) or \
        any("max_abs_diff" in row or "equivalence" in row for row in report.artifacts)
    if checked and report.equivalence_inputs:
        console.print(f"equivalence checked on: {report.equivalence_inputs}", highlight=False, markup=False)
    secs = ", ".join(f"{k} {v:.3f} s" for k, v in report.seconds.items())
    console.print(f"time: {secs}", highlight=False)
    for warning in report.warnings:
        console.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False)


def print_layers(console: Console, graph: Graph) -> None:
    table = Table(title=f"graph {graph.name}", title_justify="left")
    for col in ("node", "op", "output", "params", "MACs", "source"):
        table.add_column(col, justify="right" if col in ("params", "MACs") else "left")
    total_macs = 0
    first_reader: dict[int, str] = {}  # a weight shared by several nodes is counted at its first reader
    for node in graph.nodes:
        macs = node_macs(node)
        total_macs += macs
        params, shared = 0, []
        for v in node.inputs:
            if v is None or not v.is_param:
                continue
            owner = first_reader.setdefault(id(v), node.name)
            if owner == node.name:
                params += v.type.numel
            elif owner not in shared:
                shared.append(owner)
        cell = f"{params:,}" if params else ""
        if shared:
            cell = (cell + " " if cell else "") + f"(shared with {', '.join(shared)})"
        out = ", ".join(format_type(v.type) for v in node.outputs)
        table.add_row(node.name, node.op, out, cell, f"{macs:,}" if macs else "", node.source)
    table.add_section()
    table.add_row("total", f"{len(graph)} nodes", "", f"{graph.param_count():,}", f"{total_macs:,}", "")
    console.print(table)
    console.print("inputs: " + ", ".join(f"%{v.name}: {format_type(v.type)}" for v in graph.inputs))
    console.print("outputs: " + ", ".join(f"%{v.name}: {format_type(v.type)}" for v in graph.outputs))


def print_passes(console: Console) -> None:
    from compiler.passes import all_passes

    for name, cls in all_passes().items():
        console.print(f"[bold]{name}[/]  {'exact' if cls.exact else 'lossy'}")
        for line in inspect.cleandoc(cls.__doc__ or "").splitlines():
            console.print(f"    {line}", markup=False, highlight=False)
        for option, (field, tp) in option_fields(cls).items():
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
            console.print(f"    {option}: {describe_type(field, tp)} = {format_value(default)}", markup=False,
                          highlight=False)

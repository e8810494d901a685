"""The sweep's table: one row per point, every option the spec writes and every metric, as CSV and
JSON, plus the HTML report; all three written atomically, and left alone when a rerun found
nothing new (so a rerun of a finished sweep is cheap)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Sequence

from compiler.atomic import atomic_path
from compiler.costs import COLUMNS
from compiler.sweep.pareto import fronts
from compiler.sweep.spec import Point
from compiler.sweep.worker import PointResult

CSV, JSON, HTML = "sweep.csv", "sweep.json", "report.html"
TAIL = ("seconds", "cpu_seconds", "attempts", "error", "pipeline", "targets", "folder", "key")


def make_rows(points: Sequence[Point], results: Sequence[PointResult]) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows and their column order: point, status, label, options, metrics, then bookkeeping."""
    rows, options, metrics = [], [], []
    for point, result in zip(points, results):
        row = {"point": point.index, "status": result.status, "label": point.label, **point.options,
               **result.metrics, "seconds": round(result.seconds, 3),
               "cpu_seconds": round(result.cpu_seconds, 3), "attempts": result.attempts,
               "error": result.error, "pipeline": point.pipeline, "targets": " ".join(point.targets),
               "folder": f"points/{result.key}", "key": result.key}
        options += [c for c in point.options if c not in options]
        metrics += [c for c in result.metrics if c not in metrics and c not in options]
        rows.append(row)
    return rows, ["point", "status", "label", *options, *_metric_order(metrics), *TAIL]


def _metric_order(metrics: list[str]) -> list[str]:
    """The model's columns in COLUMNS order, then each target's, targets in order of appearance."""
    targets: list[str] = []
    for column in metrics:
        prefix = column.rpartition(".")[0]
        if prefix and prefix not in targets:
            targets.append(prefix)

    def rank(column: str) -> tuple[int, int]:
        prefix, _, name = column.rpartition(".")
        order = list(COLUMNS).index(name) if name in COLUMNS else len(COLUMNS)
        return (0 if not prefix else 1 + targets.index(prefix), order)

    return sorted(metrics, key=rank)


def write_outputs(folder: Path, title: str, spec: str, rows: list[dict[str, Any]], columns: list[str],
                  files: dict[str, list[str]]) -> dict[str, Path]:
    folder = Path(folder)
    found = fronts(rows)
    document = {"title": title, "spec": spec, "columns": columns,
                "units": {c: COLUMNS[c.rpartition(".")[2]].unit for c in columns if c.rpartition(".")[2] in COLUMNS},
                "fronts": [{"title": f.title, "x": f.x.column, "y": f.y.column,
                            "points": [rows[i]["point"] for i in f.members]} for f in found],
                "points": rows}
    text = json.dumps(document, indent=1, default=str) + "\n"
    paths = {"csv": folder / CSV, "json": folder / JSON, "html": folder / HTML}
    unchanged = all(p.is_file() for p in paths.values()) and paths["json"].read_text() == text
    if not unchanged:
        from compiler.sweep.html import render

        page = render(title, spec, rows, columns, found, files)
        with atomic_path(paths["csv"]) as tmp:
            tmp.write_text(_csv(rows, columns))
        with atomic_path(paths["html"]) as tmp:
            tmp.write_text(page)
        with atomic_path(paths["json"]) as tmp:  # last: it is what says the outputs are current
            tmp.write_text(text)
    return paths


def status_counts(rows: Sequence[dict[str, Any]]) -> str:
    """`20 ok, 3 partial, 1 failed`, in order of first appearance."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()

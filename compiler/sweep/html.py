"""The sweep's HTML report: one file that works offline (inline SVG, CSS and script, no CDN).

Pareto plots first (every point links to its folder; hovering names it), then the table of all
points (click a header to sort; each row links the point's artifacts), then the failed points
with their errors. The script also records whether every plot rendered and any script error on
`<body data-plots=... data-errors=...>`, which the headless-browser test reads.
"""
from __future__ import annotations

import html
import json
from typing import Any, Sequence

from compiler.cost_render import format_cost
from compiler.sweep.pareto import Front
from compiler.sweep.plots import front_svg
from compiler.sweep.table import status_counts

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1f2933; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; border: 1px solid #d9e2ec; padding: 8px; }
figure svg { width: 560px; height: auto; display: block; }
figcaption { font-size: 12px; max-width: 560px; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #d9e2ec; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f0f4f8; cursor: pointer; position: sticky; top: 0; }
td.text { text-align: left; }
tr.failed, tr.crashed { background: #fff0f0; } tr.partial { background: #fff8e6; }
pre { background: #f0f4f8; padding: 8px; white-space: pre-wrap; }
"""

SCRIPT = """
var errors = [];
window.addEventListener('error', function (e) { errors.push(String(e.message)); });
var consoleError = console.error;
console.error = function () { errors.push(Array.from(arguments).join(' ')); consoleError.apply(console, arguments); };
document.addEventListener('DOMContentLoaded', function () {
  var labels = JSON.parse(document.getElementById('labels').textContent);
  var rendered = 0;
  document.querySelectorAll('figure svg').forEach(function (svg) {
    var box = svg.getBoundingClientRect();
    var dots = svg.querySelectorAll('a');
    if (box.width > 0 && box.height > 0 && dots.length > 0) { rendered += 1; }
    dots.forEach(function (a) {
      var href = a.getAttribute('xlink:href') || a.getAttribute('href');
      var title = document.createElementNS('http://www.w3.org/2000/svg', 'title');
      title.textContent = labels[href] || href;
      a.insertBefore(title, a.firstChild);
    });
  });
  document.querySelectorAll('table.points th').forEach(function (th, column) {
    th.addEventListener('click', function () {
      var body = th.closest('table').tBodies[0];
      var rows = Array.from(body.rows);
      var descending = th.dataset.order === 'asc';
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.v, y = b.cells[column].dataset.v;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (isNaN(nx) || isNaN(ny)) ? String(x).localeCompare(String(y)) : nx - ny;
        return descending ? -c : c;
      });
      th.dataset.order = descending ? 'desc' : 'asc';
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  document.body.dataset.plots = String(rendered);
  document.body.dataset.errors = String(errors.length);
  document.body.dataset.errorText = errors.join(' | ');
});
"""


def render(title: str, spec: str, rows: Sequence[dict[str, Any]], columns: Sequence[str],
           fronts: Sequence[Front], files: dict[str, list[str]]) -> str:
    links = [f"{row['folder']}/" for row in rows]
    labels = {link: f"{row['point']}: {row['label']}" for link, row in zip(links, rows)}
    parts = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>",
             f"<style>{STYLE}</style><script>{SCRIPT}</script></head><body>",
             f"<h1>{_e(title)}</h1><p>{len(rows)} points: {status_counts(rows)}.</p>",
             f"<details><summary>sweep spec</summary><pre>{_e(spec)}</pre></details>",
             "<h2>Pareto fronts</h2>"]
    if not fronts:
        parts.append("<p>No two metrics to plot: the points have no accuracy and no measured or "
                     "estimated target cost.</p>")
    parts.append("<div class='plots'>")
    for n, front in enumerate(fronts):
        on_front = ", ".join(f"{rows[i]['point']} ({_e(rows[i]['label'])})" for i in front.members)
        parts.append(f"<figure data-front='{_e(front.title)}'>{front_svg(front, rows, links, f'front{n}')}"
                     f"<figcaption>On the front: {on_front or 'none'}.</figcaption></figure>")
    parts.append("</div><h2>All points</h2>")
    parts.append(_table(rows, columns, files))
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        parts.append("<h2>Failed points and targets</h2>")
        for row in failed:
            parts.append(f"<h3>{row['point']}: {_e(row['label'])} ({row['status']})</h3><pre>{_e(row['error'])}</pre>")
    parts.append(f"<script type='application/json' id='labels'>{_json(labels)}</script></body></html>\n")
    return "".join(parts)


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str], files: dict[str, list[str]]) -> str:
    shown = [c for c in columns if c not in ("error", "folder", "pipeline", "targets", "key")]
    head = "".join(f"<th>{_e(c)}</th>" for c in shown) + "<th>artifacts</th>"
    body = []
    for row in rows:
        cells = []
        for column in shown:
            value = row.get(column)
            text = "" if value is None or value == "" else format_cost(column.rsplit(".", 1)[-1], value) \
                if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
            if column == "label" and files.get(row["key"]):
                text = f"<a href='{_e(row['folder'])}/'>{_e(text)}</a>"
            else:
                text = _e(text)
            kind = "" if isinstance(value, (int, float)) and not isinstance(value, bool) else " class='text'"
            cells.append(f"<td{kind} data-v='{_e('' if value is None else value)}'>{text}</td>")
        links = " ".join(f"<a href='{_e(f)}'>{_e(f.split('/', 2)[-1])}</a>" for f in files.get(row["key"], []))
        body.append(f"<tr class='{row['status']}'>{''.join(cells)}<td class='text'>{links}</td></tr>")
    return f"<table class='points'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _json(value: Any) -> str:
    return json.dumps(value).replace("</", "<\\/")

"""The estimate report: per-stage rows, totals and throughput, as JSON (artifact.info), a rich
table, a markdown table (README.md, docs) and a PNG bar chart of cycles and resources per stage.
A sparse matrix-vector unit's row adds `sparsity` (its pattern, the weights and columns it keeps,
the words it reads against the dense unit's); a stage with notes (an annotated layer left dense)
adds `notes`."""
from __future__ import annotations

from pathlib import Path

from backends.hls.build import Design
from backends.hls.folding import UTILIZATION, Folding
from backends.hls.parts import Part
from backends.hls.resources import Resources
from backends.hls.stages import SparseMVU

COLUMNS = ("stage", "kind", "what", "PE", "SIMD", "cycles", "II", "DSP", "LUT", "BRAM18", "URAM", "bits")


def latency_cycles(design: Design, cycles: int) -> int:
    """First-output times along the dataflow (each stage starts after its inputs' first words and
    emits after reading its lead fraction of a frame), plus one frame period to finish."""
    arrival: dict[int, float] = {id(b.port): 0.0 for b in design.inputs}
    for stage in design.stages:
        start = max((arrival.get(id(p), 0.0) for p in stage.inputs), default=0.0)
        for p in stage.outputs:
            arrival[id(p)] = start + stage.lead() * stage.cycles()
    return int(max(arrival.get(id(b.port), 0.0) for b in design.outputs) + cycles)


def stage_rows(design: Design, part: Part) -> list[dict]:
    rows = []
    for s in design.stages:
        r: Resources = s.resources(part)
        bits = s.bits()
        rows.append({"stage": s.name, "kind": s.kind, "what": s.describe(), "source": s.source(),
                     "PE": s.pe, "SIMD": s.simd, "cycles": s.cycles(), "II": 1, **r.as_dict(),
                     "bits": " ".join(f"{k}={v}" for k, v in bits.items()),
                     "fifo_depths": [p.depth for p in s.inputs]})
        if isinstance(s, SparseMVU):
            rows[-1]["sparsity"] = s.sparsity_info()
        if s.notes:
            rows[-1]["notes"] = list(s.notes)
    return rows


def summarize(design: Design, folding: Folding, part: Part, clock_mhz: float, io: str) -> dict:
    totals = folding.totals.as_dict()
    budget = part.budget()
    return {
        "part": part.name, "device": part.device, "clock_mhz": clock_mhz, "io": io,
        "folding": {"cycles": folding.cycles, "fps": folding.fps, "requested_fps": folding.requested_fps,
                    "fastest_fps": folding.fastest_fps, "binding": folding.binding, "utilization_limit": UTILIZATION},
        "latency_cycles": latency_cycles(design, folding.cycles),
        "totals": totals, "budget": budget,
        "utilization": {k: round(v / budget[k], 4) if budget[k] else None for k, v in totals.items()},
        "stages": stage_rows(design, part),
    }


def _cell(row: dict, col: str) -> str:
    v = row[col]
    return f"{v:,}" if isinstance(v, int) else str(v)


def rich_table(summary: dict, title: str = ""):
    from rich.table import Table
    fold = summary["folding"]
    caption = (f"{summary['part']} at {summary['clock_mhz']:g} MHz: {fold['cycles']:,} cycles/frame, "
               f"{fold['fps']:,.1f} fps, latency {summary['latency_cycles']:,} cycles; the fastest design that fits "
               f"runs {fold['fastest_fps']:,.1f} fps, bound by {fold['binding']}")
    table = Table(title=title or "hls stages", title_justify="left", caption=caption, caption_justify="left")
    measured = any("csim_cycles" in r for r in summary["stages"])
    columns = COLUMNS[:6] + (("C-sim",) if measured else ()) + COLUMNS[6:]
    for col in columns:
        table.add_column(col, justify="left" if col in ("stage", "kind", "what", "bits") else "right", no_wrap=True)
    for row in summary["stages"]:
        cells = [_cell(row, c) for c in COLUMNS[:6]]
        if measured:
            cells.append(f"{row.get('csim_cycles', 0):,.0f}")
        table.add_row(*cells, *[_cell(row, c) for c in COLUMNS[6:]])
    t = summary["totals"]
    table.add_row("total", "", "", "", "", "", *([""] if measured else []), "",
                  f"{t['DSP']:,}", f"{t['LUT']:,}", f"{t['BRAM18']:,}", f"{t['URAM']:,}", "")
    return table


def markdown_table(summary: dict) -> str:
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    body = "".join("| " + " | ".join(_cell(r, c) for c in COLUMNS) + " |\n" for r in summary["stages"])
    t, u = summary["totals"], summary["utilization"]
    pct = {k: f" ({u[k]:.1%})" if u[k] is not None else "" for k in t}
    total = f"| total | | | | | | | {t['DSP']:,}{pct['DSP']} | {t['LUT']:,}{pct['LUT']} | " \
            f"{t['BRAM18']:,}{pct['BRAM18']} | {t['URAM']:,}{pct['URAM']} | |\n"
    return head + body + total


def plot(summary: dict, path: Path, title: str = "") -> Path:
    """Cycles per frame and the share of the part each stage uses, one bar per stage."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in summary["stages"] if r["kind"] != "dup"]
    names = [r["stage"] for r in rows][::-1]
    height = max(3.0, 0.22 * len(rows) + 1.5)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, height), sharey=True)
    cycles = [r["cycles"] for r in rows][::-1]
    left.barh(names, cycles, color="#4477aa")
    left.axvline(summary["folding"]["cycles"], color="#cc3311", linestyle="--", linewidth=1, label="slowest stage")
    left.set_xlabel("cycles per frame")
    left.legend(loc="lower right", fontsize=8)
    budget = {"DSP": "#228833", "LUT": "#ccbb44", "BRAM18": "#ee6677"}
    step = 0.27
    ys = range(len(names))
    for i, (kind, color) in enumerate(budget.items()):
        cap = summary["budget"][kind]
        share = [100.0 * r[kind] / cap if cap else 0.0 for r in rows][::-1]
        right.barh([y + (i - 1) * step for y in ys], share, height=step, color=color, label=kind)
    right.set_xlabel(f"% of {summary['part']}")
    right.legend(loc="lower right", fontsize=8)
    fig.suptitle(title or f"{summary['part']} at {summary['clock_mhz']:g} MHz: {summary['folding']['fps']:,.0f} fps")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

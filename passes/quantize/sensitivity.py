"""Per-layer sensitivity and mixed precision under a bit budget.

`layer_sensitivity` quantizes one layer at a time (on a copy of the graph, everything else float)
and measures the relative output error on the calibration batches: ||y_q - y||^2 / ||y||^2.
`choose_wide` keeps the most sensitive layers at the wide format, most sensitive first, while the
parameter-weighted average weight width stays within the budget. `plot_sensitivity` draws the
bars (matplotlib, optional) with the layers kept wide highlighted.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from compiler import calibration as calib_ctx
from compiler.context import DEFAULT_CONTEXT, PassContext
from compiler.interpreter import interpret
from compiler.ir import Graph
from compiler.ir_parser import parse_graph
from compiler.printer import print_graph
from compiler.quant.formats import parse_format


def copy_graph(graph: Graph) -> Graph:
    """An independent copy sharing the (never mutated) weight tensors."""
    return parse_graph(print_graph(graph), {name: w.data for name, w in graph.weights.items()})


def relative_error(ref: list[list[torch.Tensor]], got: list[list[torch.Tensor]]) -> float:
    num = den = 0.0
    for r_batch, g_batch in zip(ref, got):
        for r, g in zip(r_batch, g_batch):
            if r.is_floating_point():
                num += float(((g.double() - r.double()) ** 2).sum())
                den += float((r.double() ** 2).sum())
    return num / den if den else num


def layer_sensitivity(quantize, graph: Graph, layer_names: list[str], batches: list,
                      ctx: PassContext = DEFAULT_CONTEXT) -> list[dict[str, Any]]:
    """One row per layer: name, op, parameters, relative output error with only it quantized."""
    ref = [interpret(graph, *b) for b in batches]
    rows = []
    nodes = {n.name: n for n in graph.nodes}
    ctx = ctx.with_calibration(batches, "calibration batches")
    with calib_ctx.progress("sensitivity", len(layer_names)) as advance:
        for name in layer_names:
            g = copy_graph(graph)
            dataclasses.replace(quantize, only=(name,), budget=0.0, skip=()).run(g, ctx)
            err = relative_error(ref, [interpret(g, *b) for b in batches])
            w = nodes[name].inputs[1] if len(nodes[name].inputs) > 1 else None
            rows.append({"layer": name, "op": nodes[name].op,
                         "params": w.type.numel if w is not None and w.data is not None else 0, "error": err})
            advance()
    return rows


def choose_wide(rows: list[dict[str, Any]], narrow_bits: float, wide_bits: float, budget: float) -> set[str]:
    total = sum(r["params"] for r in rows) or 1
    bits = narrow_bits * total
    wide = set()
    for row in sorted(rows, key=lambda r: -r["error"]):
        extra = (wide_bits - narrow_bits) * row["params"]
        if (bits + extra) / total <= budget + 1e-9:
            wide.add(row["layer"])
            bits += extra
    return wide


def mixed_precision(quantize, graph: Graph, layers, batches, ctx: PassContext) -> tuple[set[str], dict]:
    rows = layer_sensitivity(quantize, graph, [layer.name for layer in layers], batches, ctx)
    narrow, wide_fmt = parse_format(quantize.weights), parse_format(quantize.wide)
    wide = choose_wide(rows, narrow.storage_bits, wide_fmt.storage_bits, quantize.budget)
    stats = {"mixed.wide_layers": len(wide), "mixed.wide": ",".join(sorted(wide))}
    stats.update({f"sensitivity.{r['layer']}": round(r["error"], 6) for r in rows})
    return wide, stats


def plot_sensitivity(rows: list[dict[str, Any]], path: str | Path, wide: set[str] = frozenset(),
                     title: str = "per-layer sensitivity") -> Path:
    """A bar chart (log scale) of each layer's error when only it is quantized; wide layers orange."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise RuntimeError("plotting needs matplotlib (pip install matplotlib)") from exc
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(rows)), 4.0))
    names = [r["layer"] for r in rows]
    ax.bar(range(len(rows)), [max(r["error"], 1e-12) for r in rows],
           color=["tab:orange" if n in wide else "tab:blue" for n in names])
    ax.set_yscale("log")
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color="tab:orange", label="kept wide"), Patch(color="tab:blue", label="narrow")],
              fontsize=8)
    ax.set_xticks(range(len(rows)), names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("relative output error (only this layer quantized)")
    ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

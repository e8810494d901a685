"""The latency table behind `nnforge sparsity-latency`, and its plot of latency against density.

One row per layer the sparse kernel runs: torch's dense time, then the kernel's measured time at
each density of the latency model; then the whole model's predicted latency at a few uniform
densities (calibrated on one replay of the dense model, `latency.model_latency`). `--plot` draws
one layer's piecewise-linear model with the measured points and torch's dense time as a PNG.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from compiler.api import random_inputs
from compiler.atomic import atomic_path
from compiler.context import host_simd_width
from compiler.errors import UserInputError
from compiler.ir import Graph
from compiler.sparse.layers import unsupported
from passes.simd_sparsity.groups import Candidate, find_layers
from passes.simd_sparsity.latency import LatencyModel, LatencyTable, model_latency


def kernel_layers(graph: Graph, lanes: int, only: tuple[str, ...] = ()) -> list[Candidate]:
    layers, _ = find_layers(graph, pattern="simd", lanes=lanes, m=1, only=only)
    return [layer for layer in layers if unsupported(layer.node) is None]


def latency_report(graph: Graph, simd: int | None = None, layer: str | None = None,
                   plot: Path | None = None) -> str:
    """The per-layer table as text; with `plot`, also the PNG of the first layer matching `layer`."""
    lanes = simd or host_simd_width()
    layers = kernel_layers(graph, lanes, (layer,) if layer else ())
    if not layers:
        known = ", ".join(c.name for c in kernel_layers(graph, lanes)[:12]) or "none"
        raise UserInputError(f"no layer the sparse kernel runs matches '{layer}'" if layer else
                             "the model has no layer the sparse kernel runs", hint=f"layers: {known}")
    model = LatencyModel()
    tables = [(c, model.table(c, lanes)) for c in layers]
    model.save()
    densities = tables[0][1].densities[::-1]
    head = ["layer", "op", "weight", "dense ms"] + [f"d={d:g}" for d in densities] + ["x at .25"]
    rows = [[c.name, c.node.op, "x".join(map(str, c.weight.shape)), f"{t.dense_ms:.4f}",
             *(f"{t.kernel(d):.4f}" for d in densities), f"{t.dense_ms / t.kernel(0.25):.2f}"] for c, t in tables]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"sparse kernel latency, simd={lanes}, one thread (ms; x = dense / sparse); cache {model.path}"]
    lines += ["  ".join(cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
              for r in [head, *rows]]
    if not layer:
        timing = model_latency(graph, {c.node: t for c, t in tables}, random_inputs(graph))
        lines.append(f"whole model (predicted, every layer above at one density; the rest {timing.rest_ms:.3f} ms, "
                     f"layers x{timing.scale:.2f} in context): " + ", ".join(
                         f"d={d:g}: {timing.predict(sum(t.layer(d) for _, t in tables)):.3f} ms"
                         for d in (1.0, 0.75, 0.5, 0.25)))
    if plot is not None:
        plot_layer(tables[0][0].name, tables[0][1], Path(plot))
        lines.append(f"plot of {tables[0][0].name}: {plot}")
    return "\n".join(lines) + "\n"


def plot_layer(name: str, table: LatencyTable, path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserInputError("plotting needs matplotlib", hint="pip install matplotlib") from None
    grid = np.linspace(0.0, 1.0, 201)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.plot(grid, [table.kernel(d) for d in grid], label="sparse kernel (piecewise-linear model)")
    ax.plot(table.densities, table.kernel_ms, "o", label="measured")
    ax.axhline(table.dense_ms, color="gray", linestyle="--", label="torch dense")
    ax.set(xlabel="density (fraction of SIMD groups kept)", ylabel="latency (ms)", title=name, xlim=(0, 1),
           ylim=(0, None))
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)

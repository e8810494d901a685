"""PNG pictures of a design: the tile map and the energy breakdown (matplotlib, imported lazily).

The tile map draws every allocated tile as a square on a grid, in allocation order; each piece of
a weight matrix is a filled rectangle at the rows and columns it occupies, coloured by layer, so
the picture shows which layer sits where and how full each tile is (the tile's utilisation is
printed under it when tiles are few enough to read).
"""
from __future__ import annotations

import math
from pathlib import Path

from backends.crossbar.estimates import COMPONENTS, LayerEstimate
from backends.crossbar.mapping import LayerMapping
from compiler.errors import BackendError


def available() -> bool:
    import importlib.util
    return importlib.util.find_spec("matplotlib") is not None


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise BackendError("the crossbar PNGs need matplotlib", hint="pip install matplotlib") from exc
    return plt


def tile_map(mappings: list[LayerMapping], path: Path, title: str = "") -> None:
    plt = _pyplot()
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    total = sum(m.tiles for m in mappings)
    per_row = max(1, math.ceil(math.sqrt(total * 1.6)))
    grid_rows = max(1, math.ceil(total / per_row))
    fig, ax = plt.subplots(figsize=(min(16, 2 + per_row * 0.5), min(16, 1.5 + grid_rows * 0.5)))
    cmap = plt.get_cmap("tab20")
    outlines, fills, colours = [], [], []
    first = 0
    for index, m in enumerate(mappings):
        rows, cols = m.spec.rows, m.spec.cols
        cells = m.tile_cells()
        for t in range(m.tiles):
            gx, gy = (first + t) % per_row, (first + t) // per_row
            outlines.append(Rectangle((gx * 1.1, -gy * 1.1), 1, 1))
            if total <= 120:
                ax.text(gx * 1.1 + 0.5, -gy * 1.1 - 0.08, f"{cells[t] / (rows * cols):.0%}", ha="center",
                        va="top", fontsize=5)
        for p in m.pieces:
            gx, gy = (first + p.tile) % per_row, (first + p.tile) // per_row
            width = len(p.outputs) * m.cols_per_output / cols
            height = len(p.rows) / rows
            fills.append(Rectangle((gx * 1.1 + p.col / cols, -gy * 1.1 + 1 - p.row / rows - height), width, height))
            colours.append(cmap(index % 20))
        first += m.tiles
    ax.add_collection(PatchCollection(outlines, facecolor="white", edgecolor="0.6", linewidth=0.4))
    ax.add_collection(PatchCollection(fills, facecolor=colours, edgecolor="none"))
    ax.set_xlim(-0.2, per_row * 1.1 + 0.1)
    ax.set_ylim(-grid_rows * 1.1 - 0.1, 1.2)
    ax.set_aspect("equal")
    ax.axis("off")
    shown = mappings[:20]
    handles = [Rectangle((0, 0), 1, 1, color=cmap(i % 20)) for i in range(len(shown))]
    ax.legend(handles, [m.name for m in shown], loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=6,
              title="layer (colours repeat after 20)" if len(mappings) > 20 else "layer", title_fontsize=7)
    ax.set_title(title or f"{total} tiles", fontsize=9)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)


def energy_breakdown(rows: list[LayerEstimate], path: Path, title: str = "", top: int = 25) -> None:
    """Stacked bars: energy per component for the `top` most energy-hungry layers, plus the total."""
    plt = _pyplot()
    shown = sorted(rows, key=lambda r: -r.total_energy)[:top]
    shown.sort(key=rows.index)
    fig, (ax, ax_total) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [5, 1]})
    bottoms = [0.0] * len(shown)
    totals = []
    for c in COMPONENTS:
        values = [r.energy.get(c, 0.0) * 1e9 for r in shown]
        ax.bar(range(len(shown)), values, bottom=bottoms, label=c)
        bottoms = [b + v for b, v in zip(bottoms, values)]
        totals.append(sum(r.energy.get(c, 0.0) for r in rows) * 1e9)
    ax.set_xticks(range(len(shown)), [r.name[:20] for r in shown], rotation=75, fontsize=6)
    ax.set_ylabel("energy per run of the graph (nJ)")
    ax.set_title(title or "energy by layer and component", fontsize=9)
    ax.legend(fontsize=7)
    bottom = 0.0
    for c, v in zip(COMPONENTS, totals):
        ax_total.bar([0], [v], bottom=bottom)
        bottom += v
    ax_total.set_xticks([0], ["total"])
    ax_total.set_title(f"{bottom:.3g} nJ", fontsize=9)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)

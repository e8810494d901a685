"""The mapping as data: mapping.json, NeuroSim's network CSV, and the printed estimate table.

mapping.json lists, per mapped layer, its tiles (global ids, rows and physical columns used,
programmed cells, utilisation) and the pieces on them (group, the matrix inputs and outputs as
[start, stop) runs, the tile rows and columns they occupy), the slicing and sign encoding, and
the sparsity savings; then the nodes the digital unit runs.

network.csv follows NeuroSim's network description (DNN+NeuroSim V1.x `NetWork_*.csv`): one row per
mapped layer, `IFM rows, IFM cols, input channels, kernel rows, kernel cols, output channels,
followed-by-pooling, stride`, for one sample. A linear layer is a 1x1 conv over its vectors (rows =
tokens); a grouped conv is written with its per-group input channels (the same weights and
MACs; NeuroSim has no groups); a transposed conv as the stride-1 conv with its MAC count; a 3-d
conv folds its leading spatial dims into rows.
"""
from __future__ import annotations

import math

import torch

from backends.crossbar.estimates import COMPONENTS, LayerEstimate
from backends.crossbar.mapping import LayerMapping
from compiler.ir import Node
from compiler.ops import Trait, get_op


def runs(index: torch.Tensor) -> list[list[int]]:
    """Sorted indices as [start, stop) runs: [0, 1, 2, 5] -> [[0, 3], [5, 6]]."""
    values = index.tolist()
    out: list[list[int]] = []
    for v in values:
        if out and out[-1][1] == v:
            out[-1][1] = v + 1
        else:
            out.append([v, v + 1])
    return out


def layer_json(mapping: LayerMapping, first_tile: int) -> dict:
    layer, spec = mapping.layer, mapping.spec
    cells = mapping.tile_cells()
    tiles = [{"tile": first_tile + t, "rows_used": mapping.rows_used[t], "cols_used": mapping.cols_used[t],
              "cells": cells[t], "utilisation": round(cells[t] / (spec.rows * spec.cols), 4), "pieces": []}
             for t in range(mapping.tiles)]
    for p in mapping.pieces:
        tiles[p.tile]["pieces"].append({
            "group": p.group, "inputs": runs(p.rows), "outputs": runs(p.outputs),
            "tile_rows": [p.row, p.row + len(p.rows)],
            "tile_cols": [p.col, p.col + len(p.outputs) * mapping.cols_per_output]})
    return {
        "name": layer.node.name, "op": layer.node.op, "kind": layer.kind, "groups": layer.groups,
        "matrix": [int(layer.matrices.shape[1]), int(layer.matrices.shape[2])],
        "weight_format": layer.weight_format, "weight_codes": [layer.wmin, layer.wmax],
        "input_codes": "dynamic" if layer.inputs.scale is None else layer.inputs.source,
        "slices": mapping.slices, "encoding": spec.signed, "offset": mapping.offset,
        "columns_per_output": mapping.cols_per_output, "reference_columns": mapping.reserved_cols,
        "tiles": tiles, "tile_count": mapping.tiles, "cells": mapping.cells,
        "sparsity": {"zero_rows": mapping.zero_rows, "zero_outputs": mapping.zero_outputs,
                     "dense_tiles": mapping.dense_tiles, "dense_cells": mapping.dense_cells,
                     "tiles_saved": mapping.dense_tiles - mapping.tiles,
                     "cells_saved": mapping.dense_cells - mapping.cells}}


def _followed_by_pooling(node: Node) -> bool:
    frontier, seen = list(node.outputs[0].users), set()
    while frontier:
        user = frontier.pop()
        if user in seen:
            continue
        seen.add(user)
        opdef = get_op(user.op)
        if opdef.category == "pool":
            return True
        if opdef.has(Trait.ELEMENTWISE) or user.op == "fake_quant":
            frontier.extend(user.outputs[0].users)
    return False


def neurosim_row(mapping: LayerMapping) -> list[int]:
    layer = mapping.layer
    node = layer.node
    outputs = layer.groups * layer.matrices.shape[1]
    pool = int(_followed_by_pooling(node))
    x = node.inputs[layer.layout.activations[0]]
    if layer.kind == "rows":
        batch = x.shape[0] if x.rank > 1 else 1
        vectors = x.type.numel // layer.matrices.shape[2] // batch
        return [vectors, 1, int(layer.matrices.shape[2]), 1, 1, int(outputs), pool, 1]
    spatial = len(node.attrs["stride"])
    sp = x.shape[-spatial:]
    kernel = layer.kernel
    rows, cols = math.prod(sp[:-1]), sp[-1]
    k_rows, k_cols = math.prod(kernel[:-1]), kernel[-1]
    if layer.kind == "scatter":
        in_channels = int(layer.matrices.shape[2])
        out_channels = int(outputs // math.prod(kernel))
        return [rows, cols, in_channels, k_rows, k_cols, out_channels, pool, 1]
    in_channels = int(layer.matrices.shape[2] // math.prod(kernel))
    return [rows, cols, in_channels, k_rows, k_cols, int(outputs), pool, int(node.attrs["stride"][-1])]


def neurosim_csv(mappings: list[LayerMapping]) -> str:
    return "".join(",".join(str(v) for v in neurosim_row(m)) + "\n" for m in mappings)


def _si(value: float, unit: str) -> str:
    for scale, prefix in ((1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, "")):
        if abs(value) < scale * 1000:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def table(rows: list[LayerEstimate], mappings: dict[str, LayerMapping], totals: dict, limit: int = 40) -> str:
    """The per-layer estimate table (the `limit` most energy-hungry rows) and the totals."""
    head = f"{'layer':<28} {'unit':<8} {'tiles':>5} {'util':>6} {'vectors':>8} {'cycles':>6} {'energy':>10} {'latency':>10}"
    lines = [head, "-" * len(head)]
    shown = sorted(rows, key=lambda r: -r.total_energy)[:limit]
    for r in sorted(shown, key=rows.index):
        m = mappings.get(r.name)
        tiles = str(m.tiles) if m else ""
        util = f"{m.cells / max(1, m.tiles * m.spec.rows * m.spec.cols):.0%}" if m else ""
        lines.append(f"{r.name[:28]:<28} {r.unit:<8} {tiles:>5} {util:>6} {r.vectors or '':>8} {r.cycles or '':>6} "
                     f"{_si(r.total_energy, 'J'):>10} {_si(r.latency, 's'):>10}")
    if len(rows) > limit:
        lines.append(f"... {len(rows) - limit} smaller rows in report.json")
    lines.append("-" * len(head))
    lines.append(f"total energy {_si(totals['energy_total_j'], 'J')}, latency {_si(totals['latency_s'], 's')}, "
                 f"area {totals['area_total_mm2']:.3g} mm^2")
    share = ", ".join(f"{c} {totals['energy_j'][c] / max(totals['energy_total_j'], 1e-30):.1%}" for c in COMPONENTS)
    lines.append(f"energy by component: {share}")
    return "\n".join(lines)

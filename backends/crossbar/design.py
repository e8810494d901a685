"""The artifact object of the crossbar target: mappings, estimates, and the files written from them.

    mapping.json   tiles and pieces per layer, digital nodes (report.layer_json)
    network.csv    NeuroSim's network description of the mapped layers
    report.json    options, device, per-layer and total energy, latency, area, sparsity savings
    tile_map.png   which layer sits where, how full each tile is
    energy.png     energy by layer and component (both PNGs need matplotlib, else left out)
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from backends.crossbar import plots, report
from backends.crossbar.estimates import LayerEstimate, estimate, totals
from backends.crossbar.mapping import LayerMapping
from compiler.atomic import atomic_path
from compiler.ir import Graph, Node
from compiler.ops import Trait, get_op

if TYPE_CHECKING:
    from backends.crossbar import CrossbarBackend

FILES = ("mapping.json", "network.csv", "report.json", "tile_map.png", "energy.png")


@dataclass
class CrossbarDesign:
    target: str
    graph_name: str
    mappings: list[LayerMapping]
    estimates: list[LayerEstimate]
    totals: dict
    digital: list[dict]
    options: dict = field(default_factory=dict)
    device: dict = field(default_factory=dict)

    @property
    def by_name(self) -> dict[str, LayerMapping]:
        return {m.name: m for m in self.mappings}

    def sparsity(self) -> dict:
        tiles = sum(m.tiles for m in self.mappings)
        dense_tiles = sum(m.dense_tiles for m in self.mappings)
        cells = sum(m.cells for m in self.mappings)
        dense_cells = sum(m.dense_cells for m in self.mappings)
        return {"tiles": tiles, "dense_tiles": dense_tiles, "tiles_saved": dense_tiles - tiles,
                "cells": cells, "dense_cells": dense_cells, "cells_saved": dense_cells - cells}

    def summary(self) -> dict:
        s = self.sparsity()
        capacity = s["tiles"] * self.options["rows"] * self.options["cols"]
        return {"mapped_layers": len(self.mappings), "digital_nodes": len(self.digital), "tiles": s["tiles"],
                "cells": s["cells"], "utilisation": round(s["cells"] / capacity, 4) if capacity else 0.0,
                "tiles_saved": s["tiles_saved"], "cells_saved": s["cells_saved"],
                "energy_j": self.totals["energy_total_j"], "latency_s": self.totals["latency_s"],
                "area_mm2": self.totals["area_total_mm2"]}

    def mapping_json(self) -> dict:
        layers, first = [], 0
        for m in self.mappings:
            layers.append(report.layer_json(m, first))
            first += m.tiles
        return {"target": self.target, "graph": self.graph_name, "tile": {k: self.options[k] for k in
                ("rows", "cols", "cell_bits", "signed")}, "layers": layers, "digital": self.digital,
                "sparsity": self.sparsity()}

    def report_json(self) -> dict:
        return {"target": self.target, "graph": self.graph_name, "options": self.options, "device": self.device,
                "summary": self.summary(), "totals": self.totals, "sparsity": self.sparsity(),
                "layers": [{"name": r.name, "op": r.op, "unit": r.unit, "energy_j": r.energy,
                            "energy_total_j": r.total_energy, "latency_s": r.latency, "area_m2": r.area,
                            "vectors": r.vectors, "cycles": r.cycles, "adc_conversions": r.conversions,
                            "digital_ops": r.ops} for r in self.estimates]}

    def table(self, limit: int = 40) -> str:
        return report.table(self.estimates, self.by_name, self.totals, limit)


def build_design(backend: "CrossbarBackend", graph: Graph, mappings: dict[Node, LayerMapping],
                 absorbed: set[Node]) -> CrossbarDesign:
    device = backend.device_model()
    rows = estimate(graph, mappings, device, dac_bits=backend.dac_bits, adc_bits=backend.adc_bits,
                    input_bits=backend.input_bits, absorbed=absorbed)
    digital = [{"name": n.name, "op": n.op} for n in graph.nodes
               if n not in mappings and n not in absorbed and not get_op(n.op).has(Trait.SHAPE_ONLY)]
    options = {f: getattr(backend, f) for f in backend.__dataclass_fields__}
    return CrossbarDesign(str(backend), graph.name, list(mappings.values()), rows, totals(rows), digital,
                          options, asdict(device))


def write_design(design: CrossbarDesign, output: Path) -> list[Path]:
    """All files into `output` (a folder), atomically: a failure leaves nothing half-written.
    The PNGs need matplotlib; without it they are left out and the summary says so."""
    drawing = plots.available()
    with atomic_path(output, directory=True) as tmp:
        tmp = Path(tmp)
        (tmp / "mapping.json").write_text(json.dumps(design.mapping_json(), indent=1))
        (tmp / "network.csv").write_text(report.neurosim_csv(design.mappings))
        (tmp / "report.json").write_text(json.dumps(design.report_json(), indent=1))
        if drawing:
            title = f"{design.graph_name}: {design.target}"
            plots.tile_map(design.mappings, tmp / "tile_map.png", title)
            plots.energy_breakdown(design.estimates, tmp / "energy.png", title)
    return [output / name for name in FILES if drawing or not name.endswith(".png")]

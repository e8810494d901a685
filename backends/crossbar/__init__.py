"""Resistive-memory crossbar backend: whole-graph mapping onto tiles, a noisy simulation, estimates.

    target crossbar{rows=256, cols=256, cell-bits=2, weight-bits=8, input-bits=8, dac-bits=1,
                    adc-bits=8, adc-range=1.0, signed=differential|offset, device=reram|pcm|ideal,
                    time=0, drift-compensation=false, programming-noise=1, read-noise=1, drift=1,
                    stuck-on=none, stuck-off=none, seed=0, sparse=true, precision=float32}

Every conv (im2col rows by output columns; groups packed block-diagonally), transposed conv,
linear and matmul with a constant matrix is mapped onto tiles (mapping.py, placement.py);
everything else runs in a digital unit. `artifact.run(x)` simulates the mapped graph (simulate.py)
with the device preset's non-idealities (devices.py, conductance.py) and the DAC/ADC (tiles.py);
with `device=ideal` and an ADC that covers the partial sums (`adc-bits=0`, or enough bits) every
mapped layer computes the exact integer product of the quantized codes. The artifact also carries
energy, latency and area estimates (estimates.py, constants in costs.py) and, with an output
folder, writes mapping.json, network.csv (NeuroSim's network format), report.json, tile_map.png
and energy.png (report.py, plots.py).

Quantization: a graph from the `quantize` pass is mapped with its own codes (integer_form.py),
and so is a graph after `integerize`, whose int_conv / int_linear / int_matmul layers hand on
their int32 accumulators: with ideal devices and converters its simulation is the integer
interpreter bit for bit. A layer the graph left float is quantized here, weights symmetric
per output channel at `weight-bits` and inputs per tensor at `input-bits` from each call's range;
`weight-bits=none` or `input-bits=none` makes such a layer an error instead.

`precision=bfloat16` runs the tile products in bfloat16 (exact for the 0/1 input bits and the
integer levels of ideal devices, rounding noisy conductances and the column sums to 8 mantissa
bits, below the device noise); several times faster on CPUs with AMX or AVX512-BF16.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from backends.crossbar.conductance import ReadCondition
from backends.crossbar.design import build_design, write_design
from backends.crossbar.devices import get_device
from backends.crossbar.integer_form import integer_layer
from backends.crossbar.mapping import TileSpec, map_layer
from backends.crossbar.simulate import CrossbarSimulator
from backends.crossbar.tiles import Converters
from compiler.backend import Artifact, Backend, register_backend
from compiler.context import DEFAULT_CONTEXT, TargetDescription
from compiler.errors import PipelineError
from compiler.gcpause import gc_paused
from compiler.options import option
from compiler.ir import Graph


def _option_error(option: str, why: str, hint: str = "") -> PipelineError:
    return PipelineError(f"target 'crossbar': option '{option}' {why}", hint=hint)


@register_backend("crossbar")
@dataclass(frozen=True)
class CrossbarBackend(Backend):
    """Map conv/linear/matmul onto resistive-memory tiles; noisy simulation; energy/latency/area."""

    suffix = ""
    rows: int = option(256, low=1, high=2**16)
    cols: int = option(256, low=1, high=2**16)
    cell_bits: int = option(2, low=1, high=8)
    weight_bits: int | None = option(8, low=2, high=16)
    input_bits: int | None = option(8, low=2, high=16)
    dac_bits: int = option(1, low=1, high=16)
    adc_bits: int = option(8, low=0, high=24)  # 0: ideal converters
    adc_range: float = option(1.0, low=0.0, high=1.0, low_open=True)
    signed: Literal["differential", "offset"] = "differential"
    device: Literal["reram", "pcm", "ideal"] = "reram"
    time: float = option(0.0, low=0.0, high=1e10)  # seconds after programming
    drift_compensation: bool = False
    programming_noise: float = option(1.0, low=0.0, high=100.0)
    read_noise: float = option(1.0, low=0.0, high=100.0)
    drift: float = option(1.0, low=0.0, high=100.0)
    stuck_on: float | None = option(None, low=0.0, high=1.0)
    stuck_off: float | None = option(None, low=0.0, high=1.0)
    seed: int = option(0, low=0, high=2**31 - 1)
    sparse: bool = True
    precision: Literal["float32", "bfloat16"] = "float32"

    def __post_init__(self) -> None:
        super().__post_init__()  # the declared ranges
        if self.adc_bits == 1:
            raise _option_error("adc-bits", "must be 0 (ideal) or 2..24, got 1")
        get_device(self.device)

    # ---- what passes see of this target ---------------------------------------------------
    def costs(self, graph: Graph, artifact: Artifact, settings) -> dict:
        """The cost report's crossbar columns, estimated from the mapped design (docs/costs.md)."""
        info = artifact.info
        batch = graph.inputs[0].shape[0] if graph.inputs and graph.inputs[0].shape else 1
        latency = info["latency_s"]
        estimated = f"estimated: {self.device} preset, {self.rows}x{self.cols} tiles (backends/crossbar/costs.py)"
        return {"tiles": info["tiles"], "utilisation": info["utilisation"], "energy_j": info["energy_j"],
                "latency_s": latency, "area_mm2": info["area_mm2"],
                "throughput_fps": batch / latency if latency else None, "device": self.device,
                "basis": {k: estimated for k in ("tiles", "utilisation", "energy_j", "latency_s", "area_mm2",
                                                 "throughput_fps")}}

    def describe_target(self, description: TargetDescription) -> TargetDescription:
        return description.with_options(crossbar_rows=self.rows, crossbar_cols=self.cols, cell_bits=self.cell_bits)

    @property
    def tile(self) -> TileSpec:
        return TileSpec(self.rows, self.cols, self.cell_bits, self.signed, self.sparse)

    def device_model(self):
        return get_device(self.device).scaled(programming=self.programming_noise, read=self.read_noise,
                                              drift=self.drift, stuck_on=self.stuck_on, stuck_off=self.stuck_off)

    def converters(self) -> Converters:
        return Converters(self.dac_bits, self.adc_bits, self.adc_range, 2 ** self.cell_bits)

    # ---- lowering -------------------------------------------------------------------------
    @gc_paused()
    def lower(self, graph: Graph, output: Path | None) -> Artifact:
        with DEFAULT_CONTEXT.torch_threads(parallel=False):  # small tensor ops: one thread is fastest
            return self._lower(graph, output)

    def _lower(self, graph: Graph, output: Path | None) -> Artifact:
        mappings = {}
        for node in graph.nodes:
            layer = integer_layer(node, self.weight_bits, self.input_bits)
            if layer is not None:
                mappings[node] = map_layer(layer, self.tile)
        sim = CrossbarSimulator(graph, mappings, self.device_model(), self.converters(),
                                ReadCondition(self.time, self.drift_compensation), self.seed,
                                torch.bfloat16 if self.precision == "bfloat16" else torch.float32)
        design = build_design(self, graph, mappings, sim.absorbed)
        files = write_design(design, Path(output)) if output is not None else []
        info = design.summary()
        if output is not None and not any(f.suffix == ".png" for f in files):
            info["pictures"] = "tile_map.png and energy.png left out: matplotlib is not installed"
        return Artifact(target=self.name, obj=design, files=files, runner=sim, info=info)


__all__ = ["CrossbarBackend"]

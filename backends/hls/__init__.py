"""FPGA / HLS dataflow backend: a Vitis HLS C++ project, a bit-exact g++ C simulation, estimates.

    target hls{part=zu7ev, clock-mhz=200, fps=0, io=stream|parallel, precision=w8a8, simulate=true}

The design implements the graph's integer form (docs/integer-form.md; a float or fake-quant graph
is lowered to it first, at `precision`): one C++ function per dataflow stage (window generators
and matrix-vector units for conv/linear, pooling, residual adds with sized FIFOs, concats,
requantization), streams between them, a top function with DATAFLOW and interface pragmas, PIPELINE,
ARRAY_PARTITION/RESHAPE and UNROLL following each stage's PE x SIMD folding; weights in one
translation unit per layer. `fps=0` folds for the fastest design that fits `part`; a target fps
that no folding reaches is an error naming the best reachable rate and the binding resource.
`artifact.run(x)` runs the g++ C simulation (built once, cached by content), equal bit for bit to
the interpreter on the integer graph (`artifact.obj.graph`); `artifact.info` is the estimate
report (docs/hls.md). With an output folder the project, report.json and stages.png are written.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from backends.hls.parts import Part, get_part
from backends.hls.precision import parse_precision
from compiler.backend import Artifact, Backend, register_backend
from compiler.context import DEFAULT_CONTEXT, PassContext, TargetDescription
from compiler.gcpause import gc_paused
from compiler.ir import Graph
from compiler.options import option


@register_backend("hls")
@dataclass(frozen=True)
class HLSBackend(Backend):
    """A Vitis HLS dataflow project with PE x SIMD folding for a part and frame rate, cycle and
    resource estimates, and a bit-exact g++ C simulation of the integer form."""

    suffix = ""
    part: str = "zu7ev"
    clock_mhz: float = option(200.0, low=0.0, low_open=True, high=2000.0)
    fps: float = option(0.0, low=0.0, high=1e9)  # 0: the fastest design that fits
    io: Literal["stream", "parallel"] = "stream"
    precision: str = "w8a8"
    simulate: bool = True
    host_reorder: bool = False   # ports in the order the design reads / writes (block-conv's blocks)

    def __post_init__(self) -> None:
        super().__post_init__()  # the declared ranges
        get_part(self.part)
        parse_precision(self.precision)

    @property
    def fpga(self) -> Part:
        return get_part(self.part)

    def costs(self, graph: Graph, artifact: Artifact, settings) -> dict:
        """The cost report's FPGA columns, estimated from the folded design (docs/costs.md)."""
        s = artifact.info
        fold, totals = s["folding"], s["totals"]
        batch = graph.inputs[0].shape[0] if graph.inputs and graph.inputs[0].shape else 1
        clock = s["clock_mhz"] * 1e6
        estimated = f"estimated: {s['part']} at {s['clock_mhz']:g} MHz, FINN-style formulas (backends/hls/resources.py)"
        return {"latency_s": (s["latency_cycles"] + (batch - 1) * fold["cycles"]) / clock,
                "throughput_fps": fold["fps"], "dsp": totals["DSP"], "lut": totals["LUT"],
                "bram_18k": totals["BRAM18"], "part": s["part"], "clock_mhz": s["clock_mhz"],
                "basis": {k: estimated for k in ("latency_s", "throughput_fps", "dsp", "lut", "bram_18k")}}

    def describe_target(self, description: TargetDescription) -> TargetDescription:
        return description.with_options(fpga_part=self.fpga.device, fpga_clock_mhz=self.clock_mhz)

    def lower(self, graph: Graph, output: Path | None) -> Artifact:
        return self.lower_in(graph, output, DEFAULT_CONTEXT)

    @gc_paused()
    def lower_in(self, graph: Graph, output: Path | None, ctx: PassContext) -> Artifact:
        from backends.hls.lower import lower_design
        return lower_design(graph, output, ctx, part=self.fpga, clock_mhz=self.clock_mhz, fps=self.fps or None,
                            io=self.io, precision=self.precision, simulate=self.simulate,
                            host_reorder=self.host_reorder)


__all__ = ["HLSBackend"]

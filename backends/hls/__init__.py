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
from compiler.errors import PipelineError
from compiler.gcpause import gc_paused
from compiler.ir import Graph


@register_backend("hls")
@dataclass(frozen=True)
class HLSBackend(Backend):
    """A Vitis HLS dataflow project with PE x SIMD folding for a part and frame rate, cycle and
    resource estimates, and a bit-exact g++ C simulation of the integer form."""

    suffix = ""
    part: str = "zu7ev"
    clock_mhz: float = 200.0
    fps: float = 0.0
    io: Literal["stream", "parallel"] = "stream"
    precision: str = "w8a8"
    simulate: bool = True

    def __post_init__(self) -> None:
        get_part(self.part)
        parse_precision(self.precision)
        if not self.clock_mhz > 0:
            raise PipelineError(f"target 'hls': clock-mhz must be positive, got {self.clock_mhz}")
        if self.fps < 0:
            raise PipelineError(f"target 'hls': fps must be >= 0 (0: the fastest that fits), got {self.fps}")

    @property
    def fpga(self) -> Part:
        return get_part(self.part)

    def describe_target(self, description: TargetDescription) -> TargetDescription:
        return description.with_options(fpga_part=self.fpga.device, fpga_clock_mhz=self.clock_mhz)

    def lower(self, graph: Graph, output: Path | None) -> Artifact:
        return self.lower_in(graph, output, DEFAULT_CONTEXT)

    @gc_paused()
    def lower_in(self, graph: Graph, output: Path | None, ctx: PassContext) -> Artifact:
        from backends.hls.lower import lower_design
        return lower_design(graph, output, ctx, part=self.fpga, clock_mhz=self.clock_mhz, fps=self.fps or None,
                            io=self.io, precision=self.precision, simulate=self.simulate)


__all__ = ["HLSBackend"]

"""The pass context: what a pass may read besides the graph.

`PassManager` hands every pass one `PassContext`: the calibration data, the seed, the thread
count, and a `TargetDescription` of the hardware the pipeline compiles for (host SIMD width,
FPGA part and clock, crossbar tile shape and cell bits). Passes read these instead of globals,
so the same pass instance gives the same result wherever it runs. `compile()` builds the context
from its arguments and its targets (each backend fills in what it knows of its hardware).
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterator

import torch

from compiler.calibration import Calibration


@lru_cache(maxsize=1)
def host_simd_width() -> int:
    """fp32 lanes of the host's widest vector unit torch uses (AVX-512: 16, AVX2: 8, else 4)."""
    capability = torch.backends.cpu.get_cpu_capability().upper()
    if "AVX512" in capability:
        return 16
    if "AVX2" in capability:
        return 8
    return 4


@dataclass(frozen=True)
class TargetDescription:
    """The hardware facts passes and backends size their work by.

    `simd_width`: fp32 lanes of the CPU that runs sparse kernels (default: this host);
    `fpga_part` and `fpga_clock_mhz`: the FPGA a dataflow design targets;
    `crossbar_rows`, `crossbar_cols`, `cell_bits`: one resistive-memory crossbar tile.
    """

    simd_width: int = field(default_factory=host_simd_width)
    fpga_part: str = "xczu7ev-ffvc1156-2-e"
    fpga_clock_mhz: float = 200.0
    crossbar_rows: int = 256
    crossbar_cols: int = 256
    cell_bits: int = 2

    def with_options(self, **facts: Any) -> "TargetDescription":
        """A copy with the given facts replaced (unknown names are a programming error)."""
        return dataclasses.replace(self, **facts)


@dataclass(frozen=True)
class PassContext:
    """Everything a pass reads besides the graph.

    `calibration`: real inputs for passes that calibrate (None: the pass generates its own and
    says so in its statistics); `seed`: for anything random the pass does without a seed option
    of its own; `threads`: torch threads for passes that do heavy tensor work (None: leave torch's
    setting); `target`: the hardware description; `targets`: the backends the compile lowers to,
    so a pass that picks number formats itself picks only ones every target carries.
    """

    calibration: Calibration | None = None
    seed: int = 0
    threads: int | None = None
    target: TargetDescription = field(default_factory=TargetDescription)
    targets: tuple[Any, ...] = ()  # compiler.backend.Backend instances (backend.py imports this module)

    def format_refusal(self, fmt: str) -> str:
        """Which target cannot carry quantization format `fmt` and why ("" when all can)."""
        for backend in self.targets:
            why = backend.refuses(fmt)
            if why:
                return f"target {backend}: {why}"
        return ""

    def with_calibration(self, data: Any, source: str) -> "PassContext":
        return dataclasses.replace(self, calibration=Calibration(data, source))

    @contextmanager
    def torch_threads(self, parallel: bool) -> Iterator[None]:
        """Run a pass on `threads` threads, or on one when it declares itself not parallel: graph
        rewrites do many small tensor operations, and on a busy machine torch's pool waits on its
        slowest thread (a 64x64x3x3 bmm took 15 ms on 2 shared cores, 0.4 ms on one)."""
        wanted = self.threads if parallel else 1
        previous = torch.get_num_threads()
        if wanted is None or wanted == previous:
            yield
            return
        torch.set_num_threads(wanted)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


DEFAULT_CONTEXT = PassContext()

"""The pass context: what `compile()` hands every pass besides the graph."""
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from compiler import compile
from compiler.backend import Backend
from compiler.context import DEFAULT_CONTEXT, PassContext, TargetDescription, host_simd_width
from compiler.passes import Pass, PassResult

SEEN: list[PassContext] = []


@dataclass(frozen=True)
class Record(Pass):
    """Remembers the context it ran with, and the torch threads it ran on."""

    name: ClassVar[str] = "record"
    threads: ClassVar[list[int]] = []

    def run(self, graph, ctx=DEFAULT_CONTEXT):
        SEEN.append(ctx)
        Record.threads.append(torch.get_num_threads())
        return PassResult(False)


@dataclass(frozen=True)
class SerialRecord(Record):
    parallel: ClassVar[bool] = False


@dataclass
class FpgaStub(Backend):
    """A target whose options describe an FPGA, as a hardware backend's would."""

    part: str = "xcvu9p"
    clock: float = 300.0

    def describe_target(self, description: TargetDescription) -> TargetDescription:
        return description.with_options(fpga_part=self.part, fpga_clock_mhz=self.clock)

    def lower(self, graph, output):
        from compiler.backend import Artifact
        return Artifact("fpga-stub", None)


def _model():
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU())


def test_compile_hands_passes_the_calibration_data_seed_and_target():
    SEEN.clear()
    calib = torch.randn(6, 4)
    compile(_model(), torch.randn(2, 4), [Record()], target=FpgaStub(clock=250.0), calibration_data=calib, seed=7)
    (ctx,) = SEEN
    assert ctx.seed == 7 and ctx.calibration.source == "user data"
    assert [b[0].shape for b in ctx.calibration.data] == [(2, 4)] * 3      # validated into batches
    assert ctx.target.fpga_part == "xcvu9p" and ctx.target.fpga_clock_mhz == 250.0
    assert ctx.target.simd_width == host_simd_width() in (4, 8, 16)


def test_without_data_passes_calibrate_on_the_example_inputs_and_say_so():
    SEEN.clear()
    compile(_model(), torch.randn(2, 4), [Record()])
    assert SEEN[0].calibration.source == "example inputs"


def test_threads_apply_to_parallel_passes_and_serial_passes_run_on_one():
    Record.threads.clear()
    before = torch.get_num_threads()
    compile(_model(), torch.randn(2, 4), [Record(), SerialRecord()], threads=2)
    assert Record.threads == [2, 1]
    assert torch.get_num_threads() == before

"""The dataflow stage model: streams between stages and what every stage answers.

A `Port` is one stream: a frame of `height x width` words, each word one pixel's `channels`
elements of one integer type (a vector value is one word); a value of block convolution is
`blocks` such frames, one block after another. A `Stage` is one C++ function of the
DATAFLOW region. Every stage kind answers the same questions, so the folding solver, the
estimates, the report and the C++ writer treat them alike:

* `fold_options()`: the (PE, SIMD) pairs it may run at;
* `cycles(pe, simd)`: clock cycles per frame: the trip count of its pipelined (II=1) loop, which
  the C simulation counts too (NNF_CYCLE);
* `resources(part, pe, simd)`: DSP / LUT / BRAM / URAM from resources.py's formulas;
* `lead()`: the fraction of its input frame it reads before its first output (FIFO depths);
* `emit()` / `data_unit()`: its C++ function, and a translation unit of its constants.

A new stage kind is one new module with one subclass.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from backends.hls.parts import Part
from backends.hls.resources import Resources, divisors, fifo
from backends.hls.types import IntType
from compiler.ir import Node

PARTITION_LIMIT = 4096    # Vitis HLS refuses to partition an array into more parts than this


@dataclass(eq=False)
class Port:
    name: str
    height: int
    width: int
    channels: int
    elem: IntType
    value: str = ""          # the IR value it carries ("" for a stage-internal stream)
    depth: int = 2
    blocks: int = 1

    @property
    def words(self) -> int:
        return self.blocks * self.height * self.width

    @property
    def word_type(self) -> str:
        return f"{self.name}_word"

    @property
    def elem_type(self) -> str:
        return f"{self.name}_t"

    @property
    def word_bits(self) -> int:
        return self.channels * self.elem.bits


@dataclass(eq=False)
class Stage:
    kind: ClassVar[str] = ""
    name: str
    nodes: tuple[Node, ...]
    inputs: list[Port]
    outputs: list[Port]
    pe: int = 1
    simd: int = 1
    index: int = 0                          # position in the design (the cycle counter's slot)
    notes: list[str] = field(default_factory=list)

    # ---- folding and estimates ----------------------------------------------------------
    @property
    def fold_channels(self) -> int:
        """The channel count PE divides (output channels by default)."""
        return self.outputs[0].channels

    def fold_options(self) -> list[tuple[int, int]]:
        return [(pe, 1) for pe in divisors(self.fold_channels) if pe <= PARTITION_LIMIT]

    def cycles(self, pe: int | None = None, simd: int | None = None) -> int:
        raise NotImplementedError

    def resources(self, part: Part, pe: int | None = None, simd: int | None = None) -> Resources:
        raise NotImplementedError

    def lead(self) -> float:
        """Fraction of the input frame read before the first output word."""
        return 1.0 / max(1, self.inputs[0].words) if self.inputs else 0.0

    def fold(self, pe: int | None, simd: int | None) -> tuple[int, int]:
        return (self.pe if pe is None else pe), (self.simd if simd is None else simd)

    def bits(self) -> dict[str, str]:
        """Bit widths for the report: input, weights, accumulator, output."""
        return {"in": "/".join(str(p.elem) for p in self.inputs), "out": "/".join(str(p.elem) for p in self.outputs)}

    def stream_resources(self, part: Part) -> Resources:
        """The FIFOs of this stage's input streams (a skip connection's FIFO is counted at the add)."""
        out = Resources()
        for p in self.inputs:
            out = out + fifo(p.word_bits, p.depth, part)
        return out

    def partitioned(self) -> list[tuple[str, int]]:
        """(array, parts) of every array this stage partitions completely or cyclically."""
        return []

    # ---- C++ ------------------------------------------------------------------------------
    def signature(self) -> str:
        ports = [f"nnf::stream<{p.word_type}>& {n}" for p, n in zip(self.inputs, self.input_names())]
        ports += [f"nnf::stream<{p.word_type}>& {n}" for p, n in zip(self.outputs, self.output_names())]
        return f"void {self.name}({', '.join(ports)})"

    def input_names(self) -> list[str]:
        return ["in"] if len(self.inputs) == 1 else [f"in{i}" for i in range(len(self.inputs))]

    def output_names(self) -> list[str]:
        return ["out"] if len(self.outputs) == 1 else [f"out{i}" for i in range(len(self.outputs))]

    def emit(self) -> str:
        raise NotImplementedError

    def typedefs(self) -> list[str]:
        """C++ typedefs the stage's code uses besides its ports'."""
        return []

    def data_unit(self) -> tuple[list[str], str] | None:
        """(extern declarations, translation unit) of the stage's large constants, or None."""
        return None

    def describe(self) -> str:
        """One line for the report: what the stage computes."""
        return self.kind

    def source(self) -> str:
        return next((n.source for n in self.nodes if n.source), "")

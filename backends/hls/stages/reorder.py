"""Shape-only ops (reshape, permute, slice, expand) that change the element order: a frame buffer.

The whole input frame is stored, then read out in the new order through a ROM of source indices
(computed by running the ops on the element numbers, so any chain of them is exact). Cycles:
input words + output words x channels / PE. A flatten feeding a linear layer never comes here:
the linear layer reads the frame in stream order with its weight columns permuted (build.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from backends.hls.parts import Part
from backends.hls.resources import Resources, memory
from backends.hls.stages.base import Stage
from backends.hls.stages.epilogue import Elementwise, chain_declarations, chain_expr, chain_resources
from backends.hls.stages.mvu import _wrap
from backends.hls.types import IntType


@dataclass(eq=False)
class Reorder(Stage):
    kind = "reorder"
    gather: torch.Tensor = None  # type: ignore[assignment]  # input element (stream order) of each output element
    epilogue: list[Elementwise] = field(default_factory=list)

    @property
    def index_type(self) -> IntType:
        return IntType.covering(0, max(1, self.inputs[0].words * self.inputs[0].channels - 1))

    def cycles(self, pe=None, simd=None) -> int:
        pe, _ = self.fold(pe, simd)
        out = self.outputs[0]
        return self.inputs[0].words + out.words * (out.channels // pe)

    def resources(self, part: Part, pe=None, simd=None) -> Resources:
        pe, _ = self.fold(pe, simd)
        inp, out = self.inputs[0], self.outputs[0]
        frame = memory(inp.elem.bits, inp.words * inp.channels, part) * max(1, pe // 2)   # dual-port copies
        table = memory(self.index_type.bits * pe, out.words * out.channels // pe, part)
        return frame + table + chain_resources(self.epilogue, part) * pe + Resources(lut=50) + self.stream_resources(part)

    def lead(self) -> float:
        return 1.0

    def describe(self) -> str:
        return " + ".join(n.op for n in self.nodes)

    def typedefs(self) -> list[str]:
        return [f"typedef {self.index_type.cpp} {self.name}_index_t;"]

    def data_unit(self) -> tuple[list[str], str]:
        n = self.gather.numel()
        decls = [f"extern const {self.name}_index_t {self.name}_gather[{n}];"]
        body = [f"// {self.name}: for each output element (stream order), the input element it copies.",
                '#include "design.h"', "", f"const {self.name}_index_t {self.name}_gather[{n}] = {{",
                "    " + _wrap(self.gather.tolist(), 4), "};"]
        return decls, "\n".join(body) + "\n"

    def emit(self) -> str:
        inp, out = self.inputs[0], self.outputs[0]
        value = chain_expr(self.epilogue, f"frame[{self.name}_gather[q * OUT_C + c]]", "c", self.name)
        extra = chain_declarations([(self.epilogue, self.name)], self.pe)
        return f"""\
// {self.name}: {self.describe()} as a frame buffer: the {inp.words * inp.channels} input elements are stored, then read
// out in the new order through a table of source indices, PE={self.pe} elements per cycle.
{self.signature()} {{
    constexpr int IN_WORDS = {inp.words}, IN_C = {inp.channels}, OUT_WORDS = {out.words}, OUT_C = {out.channels};
    constexpr int PE = {self.pe}, FOLDS = OUT_C / PE;
{extra}    static {inp.elem_type} frame[IN_WORDS * IN_C];
#pragma HLS ARRAY_PARTITION variable={self.name}_gather cyclic factor={self.pe}
    for (int p = 0; p < IN_WORDS; p++) {{
#pragma HLS PIPELINE II=1
        NNF_CYCLE({self.index});
        const {inp.word_type} word = in.read();
        for (int c = 0; c < IN_C; c++) frame[p * IN_C + c] = word.v[c];
    }}
    {out.word_type} y;
    for (int q = 0; q < OUT_WORDS; q++) {{
        for (int f = 0; f < FOLDS; f++) {{
#pragma HLS PIPELINE II=1
            NNF_CYCLE({self.index});
            for (int pe = 0; pe < PE; pe++) {{
#pragma HLS UNROLL
                const int c = f * PE + pe;
                y.v[c] = {value};
            }}
            if (f == FOLDS - 1) out.write(y);
        }}
    }}
}}
"""

"""Ops that move elements (reshape, permute, slice, expand, edge padding): a reorder buffer.

Output word q copies input elements through a ROM of source positions (computed by running the
ops on the element numbers, so any chain of them is exact). Before writing word q the stage
reads input words until every element q needs has arrived (`need[q]`), so the buffer holds only
the input words still to be used: a circular buffer of `depth` words, the most a word waits
between its arrival and its last use. A transpose needs the whole frame; block convolution's cut
into blocks and stitch back need one row of blocks (block height x width pixels), not the frame.
Cycles: input words + output words x channels / PE. A flatten feeding a linear layer never comes
here: the linear layer reads the frame in stream order with its weight columns permuted (build.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

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

    @cached_property
    def need(self) -> torch.Tensor:
        """Input words read before output word q: one past the latest word it or an earlier one uses."""
        words = self.gather.reshape(self.outputs[0].words, -1) // self.inputs[0].channels
        return torch.cummax(words.max(1).values + 1, 0).values

    @cached_property
    def depth(self) -> int:
        """Words the circular buffer holds: at each output word, from the oldest word it or a later
        one still uses up to the last word read."""
        words = self.gather.reshape(self.outputs[0].words, -1) // self.inputs[0].channels
        oldest = torch.flip(torch.cummin(torch.flip(words.min(1).values, (0,)), 0).values, (0,))
        return int((self.need - oldest).max())

    @property
    def slots(self) -> torch.Tensor:
        """The gather as buffer positions: input word i sits in row i % depth."""
        c = self.inputs[0].channels
        return (self.gather // c) % self.depth * c + self.gather % c

    @property
    def index_type(self) -> IntType:
        return IntType.covering(0, max(1, self.depth * self.inputs[0].channels - 1))

    @property
    def need_type(self) -> IntType:
        return IntType.covering(0, self.inputs[0].words)

    def cycles(self, pe=None, simd=None) -> int:
        pe, _ = self.fold(pe, simd)
        out = self.outputs[0]
        return self.inputs[0].words + out.words * (out.channels // pe)

    def resources(self, part: Part, pe=None, simd=None) -> Resources:
        pe, _ = self.fold(pe, simd)
        inp, out = self.inputs[0], self.outputs[0]
        frame = memory(inp.elem.bits, self.depth * inp.channels, part) * max(1, pe // 2)   # dual-port copies
        table = memory(self.index_type.bits * pe, out.words * out.channels // pe, part)
        need = memory(self.need_type.bits, out.words, part)
        return (frame + table + need + chain_resources(self.epilogue, part) * pe + Resources(lut=50)
                + self.stream_resources(part))

    def lead(self) -> float:
        return int(self.need[0]) / self.inputs[0].words

    def describe(self) -> str:
        return " + ".join(n.op for n in self.nodes)

    def typedefs(self) -> list[str]:
        return [f"typedef {self.index_type.cpp} {self.name}_index_t;", f"typedef {self.need_type.cpp} {self.name}_need_t;"]

    def data_unit(self) -> tuple[list[str], str]:
        n, words = self.gather.numel(), self.outputs[0].words
        decls = [f"extern const {self.name}_index_t {self.name}_gather[{n}];",
                 f"extern const {self.name}_need_t {self.name}_need[{words}];"]
        body = [f"// {self.name}: for each output element (stream order), the buffer position of the input element it",
                f"// copies (input word i is kept in row i % {self.depth}); for each output word, the input words read before it.",
                '#include "design.h"', "", f"const {self.name}_index_t {self.name}_gather[{n}] = {{",
                "    " + _wrap(self.slots.tolist(), 4), "};", "",
                f"const {self.name}_need_t {self.name}_need[{words}] = {{", "    " + _wrap(self.need.tolist(), 4), "};"]
        return decls, "\n".join(body) + "\n"

    def emit(self) -> str:
        inp, out = self.inputs[0], self.outputs[0]
        value = chain_expr(self.epilogue, f"frame[{self.name}_gather[q * OUT_C + c]]", "c", self.name)
        extra = chain_declarations([(self.epilogue, self.name)], self.pe)
        return f"""\
// {self.name}: {self.describe()} through a reorder buffer of {self.depth} of the {inp.words} input words (a circular
// buffer: a word stays until its last use). Before output word q, input words are read up to
// {self.name}_need[q]; the word's elements come out through a table of buffer positions, PE={self.pe} per cycle.
{self.signature()} {{
    constexpr int IN_WORDS = {inp.words}, IN_C = {inp.channels}, OUT_WORDS = {out.words}, OUT_C = {out.channels};
    constexpr int DEPTH = {self.depth}, PE = {self.pe}, FOLDS = OUT_C / PE;
{extra}    static {inp.elem_type} frame[DEPTH * IN_C];
#pragma HLS ARRAY_PARTITION variable={self.name}_gather cyclic factor={self.pe}
    int read = 0;
    {out.word_type} y;
    for (int q = 0; q < OUT_WORDS; q++) {{
        for (; read < {self.name}_need[q]; read++) {{
#pragma HLS PIPELINE II=1
            NNF_CYCLE({self.index});
            const {inp.word_type} word = in.read();
            for (int c = 0; c < IN_C; c++) frame[read % DEPTH * IN_C + c] = word.v[c];
        }}
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
    for (; read < IN_WORDS; read++) {{   // words no output uses (a slice)
#pragma HLS PIPELINE II=1
        NNF_CYCLE({self.index});
        in.read();
    }}
}}
"""

"""Ops that move elements (reshape, permute, slice, expand, edge padding): a reorder buffer.

Output word q copies input elements through a ROM of source positions (computed by running the
ops on the element numbers, so any chain of them is exact). Every cycle the stage reads the next
input word (at most a span of words beyond what the next output word needs) and, once all the words output word q needs
have arrived (`need[q]`), writes PE of its elements, so reading and writing overlap. The buffer
holds only the input words still to be used: a circular buffer of `depth` words, the longest a
word waits between its arrival and its last use. A transpose needs the whole frame and about two
frame times; block convolution's cut into blocks and stitch back need one row of blocks (block
height x width pixels) and about one frame time. Cycles: `_schedule`. A flatten feeding a linear layer never comes here: the linear layer reads
the frame in stream order with its weight columns permuted (build.py).
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
    _schedules: dict = field(default_factory=dict, repr=False)

    @cached_property
    def _used(self) -> tuple[list[int], list[int]]:
        """Per output word: input words read before it (one past the latest word it or an earlier
        one uses), and the earliest word it uses."""
        words = self.gather.reshape(self.outputs[0].words, -1) // self.inputs[0].channels
        return torch.cummax(words.max(1).values + 1, 0).values.tolist(), words.min(1).values.tolist()

    @property
    def need(self) -> list[int]:
        return self._used[0]

    @cached_property
    def ahead(self) -> int:
        """Read-ahead in words: the most one output word's inputs span (one row of blocks for a cut)."""
        need, earliest = self._used
        return max(n - e for n, e in zip(need, earliest))

    def _schedule(self, pe: int) -> tuple[int, int]:
        """(cycles, buffer depth) at PE lanes, the C++ loop's schedule: each cycle reads one input
        word, up to `ahead` words beyond what the next output word needs (a second buffer's worth,
        so the next row of blocks arrives while this one is written), and writes PE elements of
        word q once its inputs are in. A word stays until every output word that reads it is written."""
        if pe not in self._schedules:
            folds, n_in, n_out = self.outputs[0].channels // pe, self.inputs[0].words, self.outputs[0].words
            need, earliest = self._used
            t = read = depth = 0
            for q in range(n_out):
                start = t + max(0, need[q] - read - 1)            # the cycle whose read completes word q's inputs
                cap = min(n_in, need[q + 1] + self.ahead) if q + 1 < n_out else n_in
                read = min(cap, read + start + folds - t)       # reads up to the end of word q
                t = start + folds
                depth = max(depth, read - earliest[q])
            self._schedules[pe] = t + n_in - read, min(n_in, depth)
        return self._schedules[pe]

    @property
    def depth(self) -> int:
        return self._schedule(self.pe)[1]

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
        return self._schedule(pe)[0]

    def resources(self, part: Part, pe=None, simd=None) -> Resources:
        pe, _ = self.fold(pe, simd)
        inp, out = self.inputs[0], self.outputs[0]
        depth = self._schedule(pe)[1]
        frame = memory(inp.elem.bits, depth * inp.channels, part) * max(1, pe // 2)   # dual-port copies
        table = memory(IntType.covering(0, max(1, depth * inp.channels - 1)).bits * pe, out.words * out.channels // pe, part)
        need = memory(self.need_type.bits, out.words, part)
        return (frame + table + need + chain_resources(self.epilogue, part) * pe + Resources(lut=50)
                + self.stream_resources(part))

    def lead(self) -> float:
        return self.need[0] / self.inputs[0].words

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
                f"const {self.name}_need_t {self.name}_need[{words}] = {{", "    " + _wrap(self.need, 4), "};"]
        return decls, "\n".join(body) + "\n"

    def emit(self) -> str:
        inp, out = self.inputs[0], self.outputs[0]
        value = chain_expr(self.epilogue, f"frame[{self.name}_gather[q * OUT_C + c]]", "c", self.name)
        extra = chain_declarations([(self.epilogue, self.name)], self.pe)
        return f"""\
// {self.name}: {self.describe()} through a reorder buffer of {self.depth} of the {inp.words} input words (a circular
// buffer: a word stays until its last use). Each cycle reads the next input word and, once output word q's inputs
// have arrived ({self.name}_need[q] words), writes PE={self.pe} of its elements through a table of buffer positions.
{self.signature()} {{
    constexpr int IN_WORDS = {inp.words}, IN_C = {inp.channels}, OUT_WORDS = {out.words}, OUT_C = {out.channels};
    constexpr int DEPTH = {self.depth}, AHEAD = {self.ahead}, PE = {self.pe}, FOLDS = OUT_C / PE;
{extra}    static {inp.elem_type} frame[DEPTH * IN_C];
#pragma HLS ARRAY_PARTITION variable={self.name}_gather cyclic factor={self.pe}
    {out.word_type} y;
    for (int read = 0, q = 0, f = 0; read < IN_WORDS || q < OUT_WORDS;) {{
#pragma HLS PIPELINE II=1
        NNF_CYCLE({self.index});
        // read ahead at most AHEAD words beyond what the next output word needs
        const int ahead = q + 1 < OUT_WORDS ? {self.name}_need[q + 1] + AHEAD : IN_WORDS;
        if (read < ahead && read < IN_WORDS) {{
            const {inp.word_type} word = in.read();
            for (int c = 0; c < IN_C; c++) frame[read % DEPTH * IN_C + c] = word.v[c];
            read++;
        }}
        if (q < OUT_WORDS && read >= {self.name}_need[q]) {{
            for (int pe = 0; pe < PE; pe++) {{
#pragma HLS UNROLL
                const int c = f * PE + pe;
                y.v[c] = {value};
            }}
            if (++f == FOLDS) {{
                out.write(y);
                f = 0;
                q++;
            }}
        }}
    }}
}}
"""

"""Stream stages: elementwise ops, residual adds, channel concats and fan-out.

* `Pointwise`: a chain of elementwise ops (requantize, max/min with a constant) that could not be
  fused into the stage producing its input (that value has other readers);
* `Add`: a residual add of two streams, each first through its own prologue (the requantize to
  the add's common int32 scale), then the epilogue; the earlier branch's FIFO is deep enough to
  hold what it sends while the other branch fills its line buffers (build.py sizes it);
* `Concat`: the channels of several streams side by side, each through its prologue;
* `Dup`: one stream copied to several readers (a value read by several stages).

All but `Dup` take PE channels per cycle: pixels x channels / PE cycles per frame; `Dup` copies one
whole word per cycle.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from backends.hls.parts import Part
from backends.hls.resources import Resources, adder
from backends.hls.stages.base import Stage
from backends.hls.stages.epilogue import Elementwise, chain_declarations, chain_expr, chain_resources
from backends.hls.types import IntType


@dataclass(eq=False)
class Folded(Stage):
    """A stage that visits each pixel in channels / PE cycles of PE lanes."""

    epilogue: list[Elementwise] = field(default_factory=list)

    def cycles(self, pe=None, simd=None) -> int:
        pe, _ = self.fold(pe, simd)
        return self.outputs[0].words * (self.outputs[0].channels // pe)

    def lane(self, part: Part) -> Resources:
        return chain_resources(self.epilogue, part)

    def resources(self, part: Part, pe=None, simd=None) -> Resources:
        pe, _ = self.fold(pe, simd)
        return self.lane(part) * pe + Resources(lut=40) + self.stream_resources(part)

    def loop(self, reads: str, body: str, chains: list[tuple[list[Elementwise], str]]) -> str:
        out = self.outputs[0]
        return f"""\
{self.signature()} {{
    constexpr int PIXELS = {out.words}, PE = {self.pe}, FOLDS = {out.channels // self.pe};
{chain_declarations(chains, self.pe)}{reads}    {out.word_type} y;
    for (int p = 0; p < PIXELS; p++) {{
        for (int f = 0; f < FOLDS; f++) {{
#pragma HLS PIPELINE II=1
            NNF_CYCLE({self.index});
{self.read_lines()}            for (int pe = 0; pe < PE; pe++) {{
#pragma HLS UNROLL
                const int c = f * PE + pe;
                {body}
            }}
            if (f == FOLDS - 1) out.write(y);
        }}
    }}
}}
"""

    def read_lines(self) -> str:
        return "".join(f"            if (f == 0) x{i} = {name}.read();\n" for i, name in enumerate(self.input_names()))

    def declare_inputs(self) -> str:
        return "".join(f"    {p.word_type} x{i};\n" for i, p in enumerate(self.inputs))


@dataclass(eq=False)
class Pointwise(Folded):
    kind = "pointwise"

    def describe(self) -> str:
        return " + ".join(e.op for e in self.epilogue)

    def emit(self) -> str:
        value = chain_expr(self.epilogue, "x0.v[c]", "c", self.name)
        return (f"// {self.name}: per element, {'; then '.join(e.comment() for e in self.epilogue)};\n"
                f"// PE={self.pe} channels per cycle.\n"
                + self.loop(self.declare_inputs(), f"y.v[c] = {value};", [(self.epilogue, self.name)]))


@dataclass(eq=False)
class Add(Folded):
    kind = "add"
    prologues: list[list[Elementwise]] = field(default_factory=list)
    sum_type: IntType = None  # type: ignore[assignment]

    def lane(self, part: Part) -> Resources:
        out = adder(self.sum_type.bits) + chain_resources(self.epilogue, part)
        for ops in self.prologues:
            out = out + chain_resources(ops, part)
        return out

    def describe(self) -> str:
        return "residual add"

    def typedefs(self) -> list[str]:
        return [f"typedef {self.sum_type.cpp} {self.name}_sum_t;"]

    def emit(self) -> str:
        terms = [chain_expr(ops, f"x{i}.v[c]", "c", f"{self.name}_in{i}") for i, ops in enumerate(self.prologues)]
        total = " + ".join(f"{self.name}_sum_t({t})" for t in terms)
        value = chain_expr(self.epilogue, "sum", "c", self.name)
        chains = [(ops, f"{self.name}_in{i}") for i, ops in enumerate(self.prologues)] + [(self.epilogue, self.name)]
        notes = [f"input {i}: {'; '.join(e.comment() for e in ops)}" for i, ops in enumerate(self.prologues) if ops]
        notes += [f"then {e.comment()}" for e in self.epilogue]
        depths = ", ".join(str(p.depth) for p in self.inputs)
        return (f"// {self.name}: residual add of {len(self.inputs)} streams in {self.sum_type}, PE={self.pe} channels per cycle"
                f" (input FIFO depths {depths}).\n"
                + "".join(f"// {n}\n" for n in notes)
                + self.loop(self.declare_inputs(), f"const {self.name}_sum_t sum = {total};\n"
                            f"                y.v[c] = {value};", chains))


@dataclass(eq=False)
class Concat(Folded):
    kind = "concat"
    prologues: list[list[Elementwise]] = field(default_factory=list)
    value_type: IntType = None  # type: ignore[assignment]

    def typedefs(self) -> list[str]:
        return [f"typedef {self.value_type.cpp} {self.name}_value_t;"]

    def lane(self, part: Part) -> Resources:
        out = chain_resources(self.epilogue, part)
        for ops in self.prologues:
            out = out + chain_resources(ops, part)
        return out + Resources(lut=self.value_type.bits)

    def describe(self) -> str:
        return " + ".join(str(p.channels) for p in self.inputs) + " channels"

    def emit(self) -> str:
        offset, pick = 0, []
        for i, (port, ops) in enumerate(zip(self.inputs, self.prologues)):
            term = chain_expr(ops, f"x{i}.v[c - {offset}]" if offset else f"x{i}.v[c]", "c", f"{self.name}_in{i}")
            pick.append((offset + port.channels, f"{self.name}_value_t({term})"))
            offset += port.channels
        body = "".join(f"if (c < {end}) v = {term};\n                else " for end, term in pick[:-1])
        body += f"v = {pick[-1][1]};"
        value = chain_expr(self.epilogue, "v", "c", self.name)
        chains = [(ops, f"{self.name}_in{i}") for i, ops in enumerate(self.prologues)] + [(self.epilogue, self.name)]
        return (f"// {self.name}: the channels of {len(self.inputs)} streams side by side ({self.describe()}), "
                f"PE={self.pe} channels per cycle.\n"
                + self.loop(self.declare_inputs(), f"{self.name}_value_t v;\n                {body}\n"
                            f"                y.v[c] = {value};", chains))


@dataclass(eq=False)
class Dup(Stage):
    kind = "dup"

    def fold_options(self) -> list[tuple[int, int]]:
        return [(1, 1)]

    def cycles(self, pe=None, simd=None) -> int:
        return self.inputs[0].words

    def resources(self, part: Part, pe=None, simd=None) -> Resources:
        return Resources(lut=10) + self.stream_resources(part)

    def describe(self) -> str:
        return f"1 -> {len(self.outputs)} streams"

    def emit(self) -> str:
        writes = " ".join(f"{n}.write(word);" for n in self.output_names())
        return f"""\
// {self.name}: copies each word to the {len(self.outputs)} stages that read this value.
{self.signature()} {{
    for (int p = 0; p < {self.inputs[0].words}; p++) {{
#pragma HLS PIPELINE II=1
        NNF_CYCLE({self.index});
        const {self.inputs[0].word_type} word = in.read();
        {writes}
    }}
}}
"""

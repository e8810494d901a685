"""Pooling stages: max pooling over windows, and the integer sum of a global average pool.

* `MaxPool`: the window generator's line buffer and schedule (stages/window.py); for each window
  a pixel completes, PE channels per cycle take the maximum over the window (padding never wins:
  it reads the type's lowest value, as max_pool pads with -inf). Cycles: pixels - pixels that
  complete a window + output pixels x channels / PE.
* `GlobalSum`: `reduce_sum` over all pixels (integerize's global average pool: the mean's scale is
  folded into the next requantize), PE channels per cycle: pixels x channels / PE cycles.

Both run once per block of a block-convolution value (its blocks are pooled on their own).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from backends.hls.parts import Part
from backends.hls.resources import Resources, adder, memory
from backends.hls.stages.base import Stage
from backends.hls.stages.epilogue import Elementwise, chain_declarations, chain_expr, chain_resources
from backends.hls.stages.window import IND, LineBufferStage, pixel_read, sweep_loops
from backends.hls.types import IntType


@dataclass(eq=False)
class MaxPool(LineBufferStage):
    kind = "maxpool"
    epilogue: list[Elementwise] = field(default_factory=list)

    def window_cycles(self, pe: int, simd: int) -> int:
        return self.geometry.channels // pe

    def resources(self, part: Part, pe=None, simd=None) -> Resources:
        pe, _ = self.fold(pe, simd)
        g, bits = self.geometry, self.inputs[0].elem.bits
        k = g.kernel[0] * g.kernel[1]
        return (self.line_buffer(part) + (adder(bits) * (k - 1) + chain_resources(self.epilogue, part)) * pe
                + Resources(lut=60) + self.stream_resources(part))

    def describe(self) -> str:
        g = self.geometry
        return f"max {g.kernel[0]}x{g.kernel[1]} /{g.stride[0]} over {g.height}x{g.width}x{g.channels}{g.describe_blocks()}"

    def emit(self) -> str:
        g, inp, out = self.geometry, self.inputs[0], self.outputs[0]
        value = chain_expr(self.epilogue, "best", "c", self.name)
        lowest = inp.elem.lo
        body = (f"{IND}    for (int pe = 0; pe < PE; pe++) {{\n"
                "#pragma HLS UNROLL\n"
                f"{IND}        const int c = (w % FOLDS) * PE + pe;\n"
                f"{IND}        {inp.elem_type} best = {lowest};\n"
                f"{IND}        for (int ky = 0; ky < KH; ky++) {{\n"
                f"{IND}            for (int kx = 0; kx < KW; kx++) {{\n"
                f"{IND}                const {inp.elem_type} v = ELEMENT;\n"
                f"{IND}                if (v > best) best = v;\n"
                f"{IND}            }}\n"
                f"{IND}        }}\n"
                f"{IND}        result.v[c] = {value};\n"
                f"{IND}    }}\n"
                f"{IND}    if (w % FOLDS == FOLDS - 1) out.write(result);\n")
        return f"""\
// {self.name}: max pooling {g.kernel[0]}x{g.kernel[1]} (stride {g.stride[0]}x{g.stride[1]}, padding {g.padding[0]}x{g.padding[1]}, dilation {g.dilation[0]}x{g.dilation[1]}) over {g.height}x{g.width} pixels
// of {g.channels} channels{g.describe_blocks()}, PE={self.pe} channels per cycle; the last {g.rows} rows stay in a line buffer.
// Padding reads {lowest}, the type's lowest value: it never wins, as max_pool's -inf padding.
{self.signature()} {{
    constexpr int PE = {self.pe}, FOLDS = {g.channels // self.pe};
{chain_declarations([(self.epilogue, self.name)], self.pe)}    {out.word_type} result;
{sweep_loops(g, self.index, inp.elem_type, pixel_read(inp.word_type), "FOLDS", body, str(lowest))}}}
"""


@dataclass(eq=False)
class GlobalSum(Stage):
    kind = "sum"
    pixels: int = 1
    sum_type: IntType = None  # type: ignore[assignment]
    epilogue: list[Elementwise] = field(default_factory=list)

    def cycles(self, pe=None, simd=None) -> int:
        pe, _ = self.fold(pe, simd)
        return self.inputs[0].words * (self.inputs[0].channels // pe)

    @property
    def blocks(self) -> int:
        return self.inputs[0].words // self.pixels

    def resources(self, part: Part, pe=None, simd=None) -> Resources:
        pe, _ = self.fold(pe, simd)
        channels = self.inputs[0].channels
        return (memory(self.sum_type.bits * pe, channels // pe, part)
                + (adder(self.sum_type.bits) + chain_resources(self.epilogue, part)) * pe
                + Resources(lut=40) + self.stream_resources(part))

    def lead(self) -> float:
        return 1.0 / self.blocks

    def describe(self) -> str:
        blocks = f" of each of {self.blocks} blocks" if self.blocks > 1 else ""
        return f"sum over {self.pixels} pixels{blocks} x {self.inputs[0].channels}"

    def typedefs(self) -> list[str]:
        return [f"typedef {self.sum_type.cpp} {self.name}_sum_t;"]

    def emit(self) -> str:
        inp, out, channels = self.inputs[0], self.outputs[0], self.inputs[0].channels
        value = chain_expr(self.epilogue, "total", "c", self.name)
        return f"""\
// {self.name}: the sum over all {self.pixels} pixels of each of {channels} channels ({self.sum_type}, a global average pool
// whose 1/N is folded into the next requantize), PE={self.pe} channels per cycle.
{self.signature()} {{
    constexpr int BLOCKS = {self.blocks}, PIXELS = {self.pixels}, C = {channels}, PE = {self.pe}, FOLDS = C / PE;
{chain_declarations([(self.epilogue, self.name)], self.pe)}    static {self.name}_sum_t sums[C];
#pragma HLS ARRAY_PARTITION variable=sums cyclic factor={self.pe}
    {inp.word_type} pixel;
    {out.word_type} result;
    for (int block = 0; block < BLOCKS; block++) {{
        for (int p = 0; p < PIXELS; p++) {{
            for (int f = 0; f < FOLDS; f++) {{
#pragma HLS PIPELINE II=1
                NNF_CYCLE({self.index});
                if (f == 0) pixel = in.read();
                for (int pe = 0; pe < PE; pe++) {{
#pragma HLS UNROLL
                    const int c = f * PE + pe;
                    const {self.name}_sum_t total = (p == 0 ? {self.name}_sum_t(0) : sums[c]) + pixel.v[c];
                    sums[c] = total;
                    if (p == PIXELS - 1) result.v[c] = {value};
                }}
                if (p == PIXELS - 1 && f == FOLDS - 1) out.write(result);
            }}
        }}
    }}
}}
"""

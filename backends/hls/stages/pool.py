"""Pooling stages: max pooling over windows, and the integer sum of a global average pool.

* `MaxPool`: a line buffer like the window generator's (stages/window.py); after each pixel that
  completes a window, PE channels per cycle take the maximum over the window (padding never wins:
  it is the type's lowest value, as max_pool pads with -inf). Cycles: padded pixels - output
  pixels + output pixels x channels / PE.
* `GlobalSum`: `reduce_sum` over all pixels (integerize's global average pool: the mean's scale is
  folded into the next requantize), PE channels per cycle: pixels x channels / PE cycles.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from backends.hls.parts import Part
from backends.hls.resources import Resources, adder, memory
from backends.hls.stages.base import Stage
from backends.hls.stages.epilogue import Elementwise, chain_declarations, chain_expr, chain_resources
from backends.hls.stages.window import Geometry
from backends.hls.types import IntType


@dataclass(eq=False)
class MaxPool(Stage):
    kind = "maxpool"
    geometry: Geometry = None  # type: ignore[assignment]
    epilogue: list[Elementwise] = field(default_factory=list)

    def cycles(self, pe=None, simd=None) -> int:
        pe, _ = self.fold(pe, simd)
        g = self.geometry
        ph, pw = g.padded
        return ph * pw - g.out_pixels + g.out_pixels * (g.channels // pe)

    def resources(self, part: Part, pe=None, simd=None) -> Resources:
        pe, _ = self.fold(pe, simd)
        g, bits = self.geometry, self.inputs[0].elem.bits
        k = g.kernel[0] * g.kernel[1]
        return (memory(g.channels * bits, g.rows * g.padded[1], part)
                + (adder(bits) * (k - 1) + chain_resources(self.epilogue, part)) * pe
                + Resources(lut=60) + self.stream_resources(part))

    def lead(self) -> float:
        return self.geometry.lead()

    def describe(self) -> str:
        g = self.geometry
        return f"max {g.kernel[0]}x{g.kernel[1]} /{g.stride[0]} over {g.height}x{g.width}x{g.channels}"

    def emit(self) -> str:
        g, (oh, ow), inp, out = self.geometry, self.geometry.out_hw, self.inputs[0], self.outputs[0]
        value = chain_expr(self.epilogue, "best", "c", self.name)
        lowest = inp.elem.lo
        return f"""\
// {self.name}: max pooling {g.kernel[0]}x{g.kernel[1]} (stride {g.stride[0]}x{g.stride[1]}, padding {g.padding[0]}x{g.padding[1]}, dilation {g.dilation[0]}x{g.dilation[1]}) over {g.height}x{g.width} pixels
// of {g.channels} channels, PE={self.pe} channels per cycle; the last {g.rows} padded rows stay in a line buffer.
// Padding is {lowest}, the type's lowest value: it never wins, as max_pool's -inf padding.
{self.signature()} {{
    constexpr int H = {g.height}, W = {g.width}, C = {g.channels}, KH = {g.kernel[0]}, KW = {g.kernel[1]};
    constexpr int SH = {g.stride[0]}, SW = {g.stride[1]}, PH = {g.padding[0]}, PW = {g.padding[1]}, DH = {g.dilation[0]}, DW = {g.dilation[1]};
    constexpr int ROWS = {g.rows}, COLS = {g.cols}, OH = {oh}, OW = {ow}, PE = {self.pe}, FOLDS = C / PE;
{chain_declarations([(self.epilogue, self.name)], self.pe)}    static {inp.elem_type} lines[ROWS][W + 2 * PW][C];
#pragma HLS ARRAY_PARTITION variable=lines complete dim=1
#pragma HLS ARRAY_PARTITION variable=lines complete dim=3
    {out.word_type} result;
    for (int y = 0; y < H + 2 * PH; y++) {{
        for (int x = 0; x < W + 2 * PW; x++) {{
            const bool inside = y >= PH && y < H + PH && x >= PW && x < W + PW;
            {inp.word_type} pixel;
            if (inside) {{
                pixel = in.read();
            }} else {{
                for (int c = 0; c < C; c++) pixel.v[c] = {lowest};
            }}
            for (int c = 0; c < C; c++) lines[y % ROWS][x][c] = pixel.v[c];
            const int top = y - (ROWS - 1), left = x - (COLS - 1);
            const bool ready = top >= 0 && left >= 0 && top % SH == 0 && left % SW == 0 && top / SH < OH && left / SW < OW;
            const int steps = ready ? FOLDS : 1;
            for (int f = 0; f < steps; f++) {{
#pragma HLS PIPELINE II=1
                NNF_CYCLE({self.index});
                if (!ready) continue;
                for (int pe = 0; pe < PE; pe++) {{
#pragma HLS UNROLL
                    const int c = f * PE + pe;
                    {inp.elem_type} best = lines[top % ROWS][left][c];
                    for (int ky = 0; ky < KH; ky++) {{
                        for (int kx = 0; kx < KW; kx++) {{
                            const {inp.elem_type} v = lines[(top + ky * DH) % ROWS][left + kx * DW][c];
                            if (v > best) best = v;
                        }}
                    }}
                    result.v[c] = {value};
                }}
                if (f == FOLDS - 1) out.write(result);
            }}
        }}
    }}
}}
"""


@dataclass(eq=False)
class GlobalSum(Stage):
    kind = "sum"
    pixels: int = 1
    sum_type: IntType = None  # type: ignore[assignment]
    epilogue: list[Elementwise] = field(default_factory=list)

    def cycles(self, pe=None, simd=None) -> int:
        pe, _ = self.fold(pe, simd)
        return self.pixels * (self.inputs[0].channels // pe)

    def resources(self, part: Part, pe=None, simd=None) -> Resources:
        pe, _ = self.fold(pe, simd)
        channels = self.inputs[0].channels
        return (memory(self.sum_type.bits * pe, channels // pe, part)
                + (adder(self.sum_type.bits) + chain_resources(self.epilogue, part)) * pe
                + Resources(lut=40) + self.stream_resources(part))

    def lead(self) -> float:
        return 1.0

    def describe(self) -> str:
        return f"sum over {self.pixels} pixels x {self.inputs[0].channels}"

    def typedefs(self) -> list[str]:
        return [f"typedef {self.sum_type.cpp} {self.name}_sum_t;"]

    def emit(self) -> str:
        inp, out, channels = self.inputs[0], self.outputs[0], self.inputs[0].channels
        value = chain_expr(self.epilogue, "total", "c", self.name)
        return f"""\
// {self.name}: the sum over all {self.pixels} pixels of each of {channels} channels ({self.sum_type}, a global average pool
// whose 1/N is folded into the next requantize), PE={self.pe} channels per cycle.
{self.signature()} {{
    constexpr int PIXELS = {self.pixels}, C = {channels}, PE = {self.pe}, FOLDS = C / PE;
{chain_declarations([(self.epilogue, self.name)], self.pe)}    static {self.name}_sum_t sums[C];
#pragma HLS ARRAY_PARTITION variable=sums cyclic factor={self.pe}
    {inp.word_type} pixel;
    {out.word_type} result;
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
"""

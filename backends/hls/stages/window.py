"""Window generators: what feeds a matrix-vector unit (stages/mvu.py) its input vectors.

The MVU reads, per output pixel, one window (kernel row, kernel column, channel: the order its
weight columns are laid out in) as words of SIMD elements, or, for a grouped / depthwise layer,
one word of PE x SIMD elements per cycle (each PE lane its own group's slice).

* `LineBufferWindow`: the sliding-window generator of a k x k convolution. It keeps the last
  `dilation*(k-1)+1` padded rows of the frame in a line buffer (padding is the input's zero point,
  a real zero), and after each pixel that completes a window it writes that window out.
  Cycles per frame: padded pixels - output pixels + output pixels x words per window.
* `Splitter`: a 1x1 convolution (any stride) or a linear layer reading a flattened [C, H, W]
  frame: the window is the input in stream order, so each used pixel is cut into C / SIMD words
  (or SIMD / C pixels packed into one), without a line buffer. Cycles: pixels - used pixels +
  used pixels x max(1, C / SIMD).

Block convolution (a TilingAnnotation on the layer) would make the line buffer one block wide and
restart it at every block edge, padding each block on its own: `LineBufferWindow` with the block
as its frame, looped over the grid.
"""
from __future__ import annotations

from dataclasses import dataclass

from backends.hls.parts import Part
from backends.hls.resources import Resources, memory
from backends.hls.stages.base import Stage

IND = " " * 16


@dataclass(frozen=True)
class Geometry:
    """A layer's window: a 2-d convolution, or a linear layer as one window over its whole input."""

    height: int
    width: int
    channels: int
    out_channels: int
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    flatten: bool = False        # the whole [C, H, W] frame is the window, in stream order

    @property
    def rows(self) -> int:
        return self.dilation[0] * (self.kernel[0] - 1) + 1

    @property
    def cols(self) -> int:
        return self.dilation[1] * (self.kernel[1] - 1) + 1

    @property
    def padded(self) -> tuple[int, int]:
        return self.height + 2 * self.padding[0], self.width + 2 * self.padding[1]

    @property
    def out_hw(self) -> tuple[int, int]:
        if self.flatten:
            return 1, 1
        ph, pw = self.padded
        return (ph - self.rows) // self.stride[0] + 1, (pw - self.cols) // self.stride[1] + 1

    @property
    def out_pixels(self) -> int:
        return self.out_hw[0] * self.out_hw[1]

    @property
    def group_in(self) -> int:
        return self.channels // self.groups

    @property
    def group_out(self) -> int:
        return self.out_channels // self.groups

    @property
    def window(self) -> int:
        """Elements one output channel's dot product reads (the weight matrix's columns)."""
        if self.flatten:
            return self.height * self.width * self.channels
        return self.kernel[0] * self.kernel[1] * self.group_in

    @property
    def in_stream_order(self) -> bool:
        """Whether the window is the input's own element order (no line buffer needed)."""
        return self.groups == 1 and (self.flatten or (self.kernel == (1, 1) and self.padding == (0, 0)))

    def words_per_window(self, pe: int, simd: int) -> int:
        per_lane = self.window // simd
        return per_lane if self.groups == 1 else per_lane * (self.out_channels // pe)

    def simd_ok(self, simd: int) -> bool:
        if self.window % simd:
            return False
        if self.flatten:
            return self.channels % simd == 0 or simd % self.channels == 0
        return not self.in_stream_order or self.channels % simd == 0

    def lead(self) -> float:
        """The fraction of the input a sliding window must have seen before its first output."""
        before = max(0, self.rows - 1 - self.padding[0]) * self.width + max(1, self.cols - self.padding[1])
        return min(1.0, before / (self.height * self.width))


@dataclass(eq=False)
class LineBufferWindow(Stage):
    kind = "window"
    geometry: Geometry = None  # type: ignore[assignment]
    pad_code: int = 0
    rows_inner: bool = False   # lanes words hold element s of lane pe at s * PE + pe (else pe * SIMD + s)

    def cycles(self, pe=None, simd=None) -> int:
        pe, simd = self.fold(pe, simd)
        g = self.geometry
        ph, pw = g.padded
        return ph * pw - g.out_pixels + g.out_pixels * g.words_per_window(pe, simd)

    def resources(self, part: Part, pe=None, simd=None) -> Resources:
        pe, simd = self.fold(pe, simd)
        g, bits = self.geometry, self.inputs[0].elem.bits
        lanes = simd if g.groups == 1 else pe * simd
        return (memory(g.channels * bits, g.rows * g.padded[1], part)
                + Resources(lut=60 + 2 * lanes * bits) + self.stream_resources(part))

    def lead(self) -> float:
        return self.geometry.lead()

    def describe(self) -> str:
        g = self.geometry
        return f"{g.kernel[0]}x{g.kernel[1]} windows /{g.stride[0]} over {g.height}x{g.width}x{g.channels}"

    def _fill(self) -> str:
        """The loops that copy window word w out of the line buffer: whole channel runs where the
        word and the pixels line up (contiguous copies), element by element otherwise."""
        g, simd, c = self.geometry, self.simd, self.geometry.channels
        at = "lines[row_of[{k} / KW]][left + ({k} % KW) * DW]"
        if g.groups > 1 and g.group_in == 1 and g.group_out == 1 and self.rows_inner:
            body = ["for (int s = 0; s < SIMD; s++) {          // kernel positions: PE channels each",
                    "    const int k = (w % SF) * SIMD + s, c0 = (w / SF) * PE;",
                    f"    for (int lane = 0; lane < PE; lane++) word.v[s * PE + lane] = {at.format(k='k')}[c0 + lane];",
                    "}"]
        elif g.groups > 1:
            inner = "s % PE" if self.rows_inner else "s / SIMD"
            position = "s / PE" if self.rows_inner else "s % SIMD"
            body = ["for (int s = 0; s < PE * SIMD; s++) {",
                    f"    const int lane = {inner}, t = (w % SF) * SIMD + {position};",
                    "    const int group = ((w / SF) * PE + lane) / GROUP_OUT;",
                    "    const int k = t / GROUP_IN, c = group * GROUP_IN + t % GROUP_IN;",
                    f"    word.v[s] = {at.format(k='k')}[c];",
                    "}"]
        elif simd % c == 0:
            body = ["for (int j = 0; j < SIMD / C; j++) {         // whole pixels: C channels each",
                    "    const int k = w * (SIMD / C) + j;",
                    f"    for (int c = 0; c < C; c++) word.v[j * C + c] = {at.format(k='k')}[c];",
                    "}"]
        elif c % simd == 0:
            body = ["const int k = w * SIMD / C, c0 = w * SIMD % C;   // SIMD channels of one pixel",
                    f"for (int s = 0; s < SIMD; s++) word.v[s] = {at.format(k='k')}[c0 + s];"]
        else:
            body = ["int c = w * SIMD % C, kx = w * SIMD / C % KW, ky = w * SIMD / C / KW;",
                    "for (int s = 0; s < SIMD; s++) {             // channel fastest, then column, row",
                    "    word.v[s] = lines[row_of[ky]][left + kx * DW][c];",
                    "    if (++c == C) {",
                    "        c = 0;",
                    "        if (++kx == KW) {",
                    "            kx = 0;",
                    "            ky++;",
                    "        }",
                    "    }",
                    "}"]
        lines = []
        for line in body:
            lines.append(IND + line)
            if line.startswith("for"):
                lines.append("#pragma HLS UNROLL")
        return "\n".join(lines) + "\n"

    def emit(self) -> str:
        g, (oh, ow) = self.geometry, self.geometry.out_hw
        inp, out = self.inputs[0], self.outputs[0]
        lanes = g.groups > 1
        fill = self._fill()
        lanes_constants = (f"    constexpr int PE = {self.pe}, SF = {g.window // self.simd}, GROUP_IN = {g.group_in}, "
                           f"GROUP_OUT = {g.group_out};\n" if lanes else "")
        if lanes:
            order = (f"one word of PE={self.pe} lanes x SIMD={self.simd} per cycle, each lane its "
                     f"output channel's group ({g.group_in} input channel(s) per group)")
        else:
            order = f"words of SIMD={self.simd} elements"
        return f"""\
// {self.name}: {g.kernel[0]}x{g.kernel[1]} windows (stride {g.stride[0]}x{g.stride[1]}, padding {g.padding[0]}x{g.padding[1]}, dilation {g.dilation[0]}x{g.dilation[1]}) over
// {g.height}x{g.width} pixels of {g.channels} channels. The last {g.rows} padded rows stay in a line buffer; after each
// pixel that completes a window, the window leaves in kernel-row, kernel-column, channel order as
// {order}. Padding is code {self.pad_code}, the input's zero point: a real zero.
{self.signature()} {{
    constexpr int H = {g.height}, W = {g.width}, C = {g.channels}, KH = {g.kernel[0]}, KW = {g.kernel[1]};
    constexpr int SH = {g.stride[0]}, SW = {g.stride[1]}, PH = {g.padding[0]}, PW = {g.padding[1]}, DH = {g.dilation[0]}, DW = {g.dilation[1]};
    constexpr int ROWS = {g.rows}, COLS = {g.cols}, OH = {oh}, OW = {ow};
    constexpr int SIMD = {self.simd}, WORDS = {g.words_per_window(self.pe, self.simd)};
{lanes_constants}    static {inp.elem_type} lines[ROWS][W + 2 * PW][C];
#pragma HLS ARRAY_PARTITION variable=lines complete dim=1
#pragma HLS ARRAY_PARTITION variable=lines complete dim=3
    for (int y = 0; y < H + 2 * PH; y++) {{
        for (int x = 0; x < W + 2 * PW; x++) {{
            const bool inside = y >= PH && y < H + PH && x >= PW && x < W + PW;
            {inp.word_type} pixel;
            if (inside) {{
                pixel = in.read();
            }} else {{
                for (int c = 0; c < C; c++) pixel.v[c] = {self.pad_code};
            }}
            for (int c = 0; c < C; c++) lines[y % ROWS][x][c] = pixel.v[c];
            const int top = y - (ROWS - 1), left = x - (COLS - 1);
            const bool ready = top >= 0 && left >= 0 && top % SH == 0 && left % SW == 0 && top / SH < OH && left / SW < OW;
            // one cycle per pixel read; a pixel that completes a window takes one cycle per window word
            const int steps = ready ? WORDS : 1;
            int row_of[KH];      // line-buffer row of each kernel row
            for (int ky = 0; ky < KH; ky++) row_of[ky] = (top + ky * DH + ROWS) % ROWS;
            for (int w = 0; w < steps; w++) {{
#pragma HLS PIPELINE II=1
                NNF_CYCLE({self.index});
                if (!ready) continue;
                {out.word_type} word;
{fill}                out.write(word);
            }}
        }}
    }}
}}
"""


@dataclass(eq=False)
class Splitter(Stage):
    kind = "split"
    geometry: Geometry = None  # type: ignore[assignment]

    def used_pixels(self) -> int:
        g = self.geometry
        return g.height * g.width if g.flatten else g.out_pixels

    def cycles(self, pe=None, simd=None) -> int:
        _, simd = self.fold(pe, simd)
        g, used = self.geometry, self.used_pixels()
        return g.height * g.width - used + used * max(1, g.channels // simd)

    def resources(self, part: Part, pe=None, simd=None) -> Resources:
        _, simd = self.fold(pe, simd)
        return Resources(lut=30 + simd * self.inputs[0].elem.bits) + self.stream_resources(part)

    def describe(self) -> str:
        g = self.geometry
        return "flattened frame" if g.flatten else f"1x1 /{g.stride[0]} over {g.height}x{g.width}x{g.channels}"

    def emit(self) -> str:
        g, inp, out = self.geometry, self.inputs[0], self.outputs[0]
        if self.simd > g.channels:
            pack = self.simd // g.channels
            return f"""\
// {self.name}: the flattened frame ({g.height}x{g.width} pixels of {g.channels} channels) in stream order, {pack} pixels
// packed into each word of SIMD={self.simd} elements for the matrix-vector unit.
{self.signature()} {{
    constexpr int PIXELS = {g.height * g.width}, C = {g.channels}, PACK = {pack};
    {out.word_type} word;
    for (int p = 0; p < PIXELS; p++) {{
#pragma HLS PIPELINE II=1
        NNF_CYCLE({self.index});
        const {inp.word_type} pixel = in.read();
        for (int c = 0; c < C; c++) word.v[(p % PACK) * C + c] = pixel.v[c];
        if (p % PACK == PACK - 1) out.write(word);
    }}
}}
"""
        grid = "true" if g.flatten else "y % SH == 0 && x % SW == 0"
        return f"""\
// {self.name}: {"the flattened frame" if g.flatten else "1x1 windows"} ({g.height}x{g.width} pixels of {g.channels} channels{"" if g.flatten else f", stride {g.stride[0]}x{g.stride[1]}"}) in stream order,
// each used pixel cut into {g.channels // self.simd} word(s) of SIMD={self.simd} elements for the matrix-vector unit.
{self.signature()} {{
    constexpr int H = {g.height}, W = {g.width}, SH = {g.stride[0]}, SW = {g.stride[1]}, SIMD = {self.simd}, PARTS = {g.channels // self.simd};
    (void)SH; (void)SW;
    for (int y = 0; y < H; y++) {{
        for (int x = 0; x < W; x++) {{
            const {inp.word_type} pixel = in.read();
            const bool used = {grid};
            const int steps = used ? PARTS : 1;
            for (int w = 0; w < steps; w++) {{
#pragma HLS PIPELINE II=1
                NNF_CYCLE({self.index});
                if (!used) continue;
                {out.word_type} word;
                for (int s = 0; s < SIMD; s++) word.v[s] = pixel.v[w * SIMD + s];
                out.write(word);
            }}
        }}
    }}
}}
"""

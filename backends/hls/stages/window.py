"""Window generators: what feeds a matrix-vector unit (stages/mvu.py) its input vectors.

The MVU reads, per output pixel, one window (kernel row, kernel column, channel: the order its
weight columns are laid out in) as words of SIMD elements, or, for a grouped / depthwise layer,
one word of PE x SIMD elements per cycle (each PE lane its own group's slice).

* `LineBufferWindow`: the sliding-window generator of a k x k convolution. It keeps the last
  `dilation*(k-1)+1` rows of the input in a line buffer and, after each pixel read, writes out
  every window whose last pixel that was, in output order (`Schedule`). Padding is never stored:
  a window position outside the frame reads the input's zero point (a real zero), or, for the
  edge padding of block convolution (`replicate`, `reflect`), the row and column it copies.
  Cycles per frame: pixels - pixels that complete a window + output pixels x words per window.
* `Splitter`: a 1x1 convolution (any stride) or a linear layer reading a flattened [C, H, W]
  frame: the window is the input in stream order, so each used pixel is cut into C / SIMD words
  (or SIMD / C pixels packed into one), without a line buffer. Cycles: pixels - used pixels +
  used pixels x max(1, C / SIMD).

Block convolution (a `TilingAnnotation` on the layer, passes/block_conv) makes a value a batch
of blocks; its stream is the blocks one after another, each in raster order. Every stage then
runs its loops once per block: the line buffer is one block wide and restarts at each block, and
each block is padded on its own, so no row is ever kept across blocks.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from backends.hls.parts import Part
from backends.hls.resources import Resources, memory
from backends.hls.stages.base import Stage
from compiler.tiling import EDGE_PADDING, TilingAnnotation

IND = " " * 16


@dataclass(frozen=True)
class Geometry:
    """A layer's window: a 2-d convolution or pooling over `blocks` blocks of height x width
    (one block: a plain frame), or a linear layer as one window over its whole input. `edge`:
    how padding is filled (`zeros`: the operation's own padding value; `replicate` / `reflect`:
    copies of the block's edge, block convolution's explicit `pad`)."""

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
    blocks: int = 1
    edge: str = "zeros"

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
        """Output size of one block."""
        if self.flatten:
            return 1, 1
        ph, pw = self.padded
        return (ph - self.rows) // self.stride[0] + 1, (pw - self.cols) // self.stride[1] + 1

    @property
    def block_pixels(self) -> int:
        return self.height * self.width

    @property
    def out_pixels(self) -> int:
        """Output pixels of the whole frame (all blocks)."""
        return self.blocks * self.out_hw[0] * self.out_hw[1]

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

    def describe_blocks(self) -> str:
        edge = f" ({self.edge} padding)" if self.edge in EDGE_PADDING and any(self.padding) else ""
        return f" in {self.blocks} blocks{edge}" if self.blocks > 1 else ""


def _edge_map(size: int, pad: int, edge: str) -> list[int]:
    """For each padded position along one axis, the input position it reads (-1: the padding value)."""
    out = []
    for p in range(size + 2 * pad):
        r = p - pad
        if 0 <= r < size:
            out.append(r)
        elif edge == "replicate":
            out.append(min(max(r, 0), size - 1))
        elif edge == "reflect":
            out.append(-r if r < 0 else 2 * (size - 1) - r)
        else:
            out.append(-1)
    return out


@dataclass(frozen=True)
class Schedule:
    """When a line buffer can write each window out, for one block.

    Window (oy, ox) reads input rows R(oy) x columns C(ox) (through the padding maps); it is
    complete once pixel (max R(oy), max C(ox)) has been read. Windows leave in output order, so
    after reading pixel (y, x) the generator writes the windows of the first output row whose
    last input row is y that end at column x, and, at that row's last column, every further
    output row that also ends at row y (the bottom edge). `row_count[y]` / `col_count[x]` count
    the output rows / columns that end at input row y / column x: the C++ reads them from tables
    of the same name, and `busy` (pixels that write at least one window) gives the cycle count."""

    row_map: tuple[int, ...]
    col_map: tuple[int, ...]
    row_count: tuple[int, ...]
    col_count: tuple[int, ...]

    @classmethod
    def of(cls, g: Geometry) -> "Schedule":
        (oh, ow), rows, cols = g.out_hw, _edge_map(g.height, g.padding[0], g.edge), _edge_map(g.width, g.padding[1], g.edge)
        last_row = [max([0] + [rows[oy * g.stride[0] + k * g.dilation[0]] for k in range(g.kernel[0])]) for oy in range(oh)]
        last_col = [max([0] + [cols[ox * g.stride[1] + k * g.dilation[1]] for k in range(g.kernel[1])]) for ox in range(ow)]
        return cls(tuple(rows), tuple(cols), tuple(last_row.count(y) for y in range(g.height)),
                   tuple(last_col.count(x) for x in range(g.width)))

    @property
    def busy(self) -> int:
        return sum(1 for r in self.row_count if r) * sum(1 for c in self.col_count if c)

    @property
    def first(self) -> int:
        """Pixels read before the first window is complete."""
        y = next(i for i, r in enumerate(self.row_count) if r)
        return y * len(self.col_count) + next(i for i, c in enumerate(self.col_count) if c) + 1

    def tables(self) -> str:
        """The four tables as C++ constants (small: one entry per row or column of a block)."""
        def table(name: str, values: tuple[int, ...], what: str) -> str:
            return f"    static const int {name}[{len(values)}] = {{{', '.join(map(str, values))}}};   // {what}\n"
        return (table("ROW_MAP", self.row_map, "input row of each padded row (-1: padding)")
                + table("COL_MAP", self.col_map, "input column of each padded column (-1: padding)")
                + table("ROW_COUNT", self.row_count, "output rows whose last input row is this one")
                + table("COL_COUNT", self.col_count, "output columns whose last input column is this one"))

    def can_pad(self) -> bool:
        return -1 in self.row_map or -1 in self.col_map


def sweep_loops(g: Geometry, index: int, elem_type: str, read: str, steps_per_window: str, body: str,
                pad_value: str) -> str:
    """The line buffer and the loops a line-buffer stage runs: over blocks, rows and columns of
    each block, one pixel read per pixel, then the windows it completes (`Schedule`),
    `steps_per_window` cycles each, or one idle cycle when it completes none. `body` runs per
    cycle (`w`: the cycle of the window) and reads window elements as ELEMENT (kernel row ky,
    kernel column kx, channel c) through `slot[ky]` / `col[kx]`: line-buffer row and input column,
    set at each window's first cycle. Zero padding reads an extra row and column of the line
    buffer that hold `pad_value`, so no element needs a test."""
    (_, ow), schedule = g.out_hw, Schedule.of(g)
    x_last = max(x for x, c in enumerate(schedule.col_count) if c)
    pads = schedule.can_pad()
    extra = " + 1" if pads else ""
    padding = f"""\
    static bool padded = false;     // once: the extra row and column that padding positions read
    if (!padded) {{
        for (int c = 0; c < C; c++) {{
            for (int x = 0; x <= W; x++) lines[ROWS][x][c] = {pad_value};
            for (int r = 0; r < ROWS; r++) lines[r][W][c] = {pad_value};
        }}
        padded = true;
    }}
""" if pads else ""
    return f"""\
    constexpr int H = {g.height}, W = {g.width}, C = {g.channels}, KH = {g.kernel[0]}, KW = {g.kernel[1]};
    constexpr int SH = {g.stride[0]}, SW = {g.stride[1]}, DH = {g.dilation[0]}, DW = {g.dilation[1]};
    constexpr int ROWS = {g.rows}, OW = {ow}, X_LAST = {x_last}, BLOCKS = {g.blocks};
{schedule.tables()}    static {elem_type} lines[ROWS{extra}][W{extra}][C];
#pragma HLS ARRAY_PARTITION variable=lines complete dim=1
#pragma HLS ARRAY_PARTITION variable=lines complete dim=3
{padding}    for (int block = 0; block < BLOCKS; block++) {{
        int oy = 0, ox = 0;     // the next window of this block
        for (int y = 0; y < H; y++) {{
            for (int x = 0; x < W; x++) {{
{read}                // the windows this pixel completes, in output order
                const int windows = ROW_COUNT[y] == 0 ? 0 : COL_COUNT[x] + (x == X_LAST ? (ROW_COUNT[y] - 1) * OW : 0);
                const int steps = windows == 0 ? 1 : windows * {steps_per_window};
                int slot[KH] = {{}}, col[KW] = {{}};   // the window's line-buffer rows and input columns
                for (int w = 0; w < steps; w++) {{
#pragma HLS PIPELINE II=1
                    NNF_CYCLE({index});
                    if (windows == 0) continue;
                    if (w % {steps_per_window} == 0) {{
                        for (int ky = 0; ky < KH; ky++) {{
                            const int r = ROW_MAP[oy * SH + ky * DH];
                            slot[ky] = r < 0 ? ROWS : r % ROWS;
                        }}
                        for (int kx = 0; kx < KW; kx++) {{
                            const int x_in = COL_MAP[ox * SW + kx * DW];
                            col[kx] = x_in < 0 ? W : x_in;
                        }}
                    }}
{body.replace("ELEMENT", "lines[slot[ky]][col[kx]][c]")}                    if (w % {steps_per_window} == {steps_per_window} - 1 && ++ox == OW) {{
                        ox = 0;
                        oy++;
                    }}
                }}
            }}
        }}
    }}
"""


def pixel_read(word_type: str) -> str:
    return (f"{IND}const {word_type} pixel = in.read();\n"
            f"{IND}for (int c = 0; c < C; c++) lines[y % ROWS][x][c] = pixel.v[c];\n")


def tiling_of(stage: Stage) -> TilingAnnotation | None:
    return next((n.annotation(TilingAnnotation) for n in stage.nodes if n.annotation(TilingAnnotation)), None)


@dataclass(eq=False)
class LineBufferStage(Stage):
    """A stage that slides windows over its input with a line buffer and `sweep_loops`: a window
    generator or a max pool. Cycles: pixels - pixels that complete a window + output pixels x the
    cycles each window takes (`window_cycles`)."""

    geometry: Geometry = None  # type: ignore[assignment]

    @cached_property
    def schedule(self) -> Schedule:
        return Schedule.of(self.geometry)

    def window_cycles(self, pe: int, simd: int) -> int:
        raise NotImplementedError

    def cycles(self, pe=None, simd=None) -> int:
        pe, simd = self.fold(pe, simd)
        g = self.geometry
        return g.blocks * (g.block_pixels - self.schedule.busy) + g.out_pixels * self.window_cycles(pe, simd)

    def line_buffer(self, part: Part) -> Resources:
        g = self.geometry
        return memory(g.channels * self.inputs[0].elem.bits, g.rows * g.width, part)

    def lead(self) -> float:
        return self.schedule.first / (self.geometry.blocks * self.geometry.block_pixels)


@dataclass(eq=False)
class LineBufferWindow(LineBufferStage):
    kind = "window"
    pad_code: int = 0
    rows_inner: bool = False   # lanes words hold element s of lane pe at s * PE + pe (else pe * SIMD + s)

    def window_cycles(self, pe: int, simd: int) -> int:
        return self.geometry.words_per_window(pe, simd)

    def resources(self, part: Part, pe=None, simd=None) -> Resources:
        pe, simd = self.fold(pe, simd)
        g, bits = self.geometry, self.inputs[0].elem.bits
        lanes = simd if g.groups == 1 else pe * simd
        return self.line_buffer(part) + Resources(lut=60 + 2 * lanes * bits) + self.stream_resources(part)

    def describe(self) -> str:
        g = self.geometry
        return f"{g.kernel[0]}x{g.kernel[1]} windows /{g.stride[0]} over {g.height}x{g.width}x{g.channels}{g.describe_blocks()}"

    def _one_channel_lanes(self) -> bool:
        """Depthwise with rows innermost: each lane word is one kernel position of PE channels."""
        g = self.geometry
        return g.groups > 1 and g.group_in == 1 and g.group_out == 1 and self.rows_inner

    def _fill(self) -> str:
        """The loops that copy window word w out of the line buffer (ELEMENT: kernel row ky, kernel
        column kx, channel c): whole channel runs where the word and the pixels line up, element by
        element otherwise."""
        g, simd, c = self.geometry, self.simd, self.geometry.channels
        if self._one_channel_lanes():
            body = ["for (int s = 0; s < SIMD; s++) {          // kernel positions: PE channels each",
                    "    const int k = (wd % SF) * SIMD + s, ky = k / KW, kx = k % KW, c0 = (wd / SF) * PE;",
                    "    for (int lane = 0; lane < PE; lane++) {",
                    "        const int c = c0 + lane;",
                    "        word.v[s * PE + lane] = ELEMENT;",
                    "    }",
                    "}"]
        elif g.groups > 1:
            inner = "s % PE" if self.rows_inner else "s / SIMD"
            position = "s / PE" if self.rows_inner else "s % SIMD"
            body = ["for (int s = 0; s < PE * SIMD; s++) {",
                    f"    const int lane = {inner}, t = (wd % SF) * SIMD + {position};",
                    "    const int group = ((wd / SF) * PE + lane) / GROUP_OUT;",
                    "    const int k = t / GROUP_IN, ky = k / KW, kx = k % KW, c = group * GROUP_IN + t % GROUP_IN;",
                    "    word.v[s] = ELEMENT;",
                    "}"]
        elif simd % c == 0:
            body = ["for (int j = 0; j < SIMD / C; j++) {         // whole pixels: C channels each",
                    "    const int k = wd * (SIMD / C) + j, ky = k / KW, kx = k % KW;",
                    "    for (int c = 0; c < C; c++) {",
                    "        word.v[j * C + c] = ELEMENT;",
                    "    }",
                    "}"]
        elif c % simd == 0:
            body = ["const int k = wd * SIMD / C, ky = k / KW, kx = k % KW, c0 = wd * SIMD % C;",
                    "for (int s = 0; s < SIMD; s++) {              // SIMD channels of one pixel",
                    "    const int c = c0 + s;",
                    "    word.v[s] = ELEMENT;",
                    "}"]
        else:
            body = ["int c = wd * SIMD % C, kx = wd * SIMD / C % KW, ky = wd * SIMD / C / KW;",
                    "for (int s = 0; s < SIMD; s++) {             // channel fastest, then column, row",
                    "    word.v[s] = ELEMENT;",
                    "    if (++c == C) {",
                    "        c = 0;",
                    "        if (++kx == KW) {",
                    "            kx = 0;",
                    "            ky++;",
                    "        }",
                    "    }",
                    "}"]
        lines = [IND + "    " + f"{self.outputs[0].word_type} word;", IND + "    const int wd = w % WORDS;   // the word of this window"]
        for line in body:
            lines.append(IND + "    " + line)
            if line.lstrip().startswith("for"):
                lines.append("#pragma HLS UNROLL")
        lines.append(IND + "    out.write(word);")
        return "\n".join(lines) + "\n"

    def emit(self) -> str:
        g, inp = self.geometry, self.inputs[0]
        words = g.words_per_window(self.pe, self.simd)
        lanes = g.groups > 1
        if lanes:
            order = (f"one word of PE={self.pe} lanes x SIMD={self.simd} per cycle, each lane its "
                     f"output channel's group ({g.group_in} input channel(s) per group)")
            groups = "" if self._one_channel_lanes() else f", GROUP_IN = {g.group_in}, GROUP_OUT = {g.group_out}"
            constants = (f"    constexpr int SIMD = {self.simd}, WORDS = {words}, PE = {self.pe}, "
                         f"SF = {g.window // self.simd}{groups};\n")
        else:
            order = f"words of SIMD={self.simd} elements"
            constants = f"    constexpr int SIMD = {self.simd}, WORDS = {words};\n"
        if g.edge in EDGE_PADDING:
            padding = f"Padding copies the block's {'edge' if g.edge == 'replicate' else 'mirror image'} ({g.edge}), as block convolution defines it."
        else:
            padding = f"Padding reads code {self.pad_code}, the input's zero point: a real zero."
        tiling = tiling_of(self)
        blocks = (f"\n// Block convolution: {g.blocks} blocks of {g.height}x{g.width} ({tiling.grid[0]}x{tiling.grid[1]} grid), each padded on its own;\n"
                  "// the line buffer is one block wide and starts again at every block."
                  if tiling is not None and g.blocks > 1 else "")
        read = pixel_read(inp.word_type)
        return f"""\
// {self.name}: {g.kernel[0]}x{g.kernel[1]} windows (stride {g.stride[0]}x{g.stride[1]}, padding {g.padding[0]}x{g.padding[1]}, dilation {g.dilation[0]}x{g.dilation[1]}) over
// {g.height}x{g.width} pixels of {g.channels} channels. The last {g.rows} rows stay in a line buffer; after each pixel,
// the windows it completes leave in kernel-row, kernel-column, channel order as {order}.
// {padding}{blocks}
{self.signature()} {{
{constants}{sweep_loops(g, self.index, inp.elem_type, read, "WORDS", self._fill(), str(self.pad_code))}}}
"""


@dataclass(eq=False)
class Splitter(Stage):
    kind = "split"
    geometry: Geometry = None  # type: ignore[assignment]

    def used_pixels(self) -> int:
        g = self.geometry
        return g.block_pixels if g.flatten else g.out_pixels

    def cycles(self, pe=None, simd=None) -> int:
        _, simd = self.fold(pe, simd)
        g, used = self.geometry, self.used_pixels()
        return g.blocks * g.block_pixels - used + used * max(1, g.channels // simd)

    def resources(self, part: Part, pe=None, simd=None) -> Resources:
        _, simd = self.fold(pe, simd)
        return Resources(lut=30 + simd * self.inputs[0].elem.bits) + self.stream_resources(part)

    def describe(self) -> str:
        g = self.geometry
        return "flattened frame" if g.flatten else \
            f"1x1 /{g.stride[0]} over {g.height}x{g.width}x{g.channels}{g.describe_blocks()}"

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
        blocks = f" in {g.blocks} blocks" if g.blocks > 1 else ""
        return f"""\
// {self.name}: {"the flattened frame" if g.flatten else "1x1 windows"} ({g.height}x{g.width} pixels of {g.channels} channels{blocks}{"" if g.flatten else f", stride {g.stride[0]}x{g.stride[1]}"}) in stream order,
// each used pixel cut into {g.channels // self.simd} word(s) of SIMD={self.simd} elements for the matrix-vector unit.
{self.signature()} {{
    constexpr int BLOCKS = {g.blocks}, H = {g.height}, W = {g.width}, SH = {g.stride[0]}, SW = {g.stride[1]};
    constexpr int SIMD = {self.simd}, PARTS = {g.channels // self.simd};
    (void)SH; (void)SW;
    for (int block = 0; block < BLOCKS; block++) {{
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
}}
"""

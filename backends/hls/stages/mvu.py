"""The matrix-vector unit: every convolution and linear layer, FINN's MVU folding.

Row o of the weight matrix (output channel o) is a dot product with the window its window
generator (stages/window.py) sends: PE rows run in parallel, each taking SIMD window elements per
cycle, so one output pixel takes NF = rows / PE times SF = window / SIMD cycles, and a frame

    cycles = output pixels x (rows / PE) x (window / SIMD).

A dense layer reads each window once and keeps it for all NF row folds; a grouped or depthwise
layer (FINN's vector unit) gets one word of PE x SIMD elements per cycle, each lane its own
group's slice. The accumulator starts at the bias and sums (x - offset) * w, then, as a row
finishes, goes through the epilogue (requantize to the next layer's codes). The weight's zero
point is subtracted offline; the input's zero point moves into the bias (sum (x - x_zp) w =
sum (x - offset) w + (offset - x_zp) sum w), with the offset at the lowest input code (0 for
unsigned codes, a flip of the sign bit for signed ones), so every product is unsigned x signed: no
subtractor per multiplier, and the form g++ vectorizes correctly (GCC 12 turns signed x signed
8-bit dot products into AVX-VNNI's unsigned x signed instruction). The accumulator's width covers
every partial sum for any input (build.py), never the reference's int32 unless it must.

Weights sit in a ROM [rows][window] in their own translation unit, partitioned cyclically by PE
(rows) and reshaped by SIMD (columns), so the folding never changes the weight file. A layer whose
weight carries a SparsityAnnotation gets the sparse unit (stages/sparse_mvu.py), a subclass that
reads only each row fold's kept window positions and shares the lanes, the epilogue, the bias and
the ROM writer below.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from backends.hls.parts import Part
from backends.hls.resources import Resources, adder, divisors, memory, multiplier
from backends.hls.stages.base import PARTITION_LIMIT, Stage
from backends.hls.stages.epilogue import (Elementwise, chain_expr, chain_partitioned, chain_pragmas,
                                         chain_resources, chain_tables)
from backends.hls.stages.window import Geometry
from backends.hls.types import IntType

URAM_FROM_BRAM18 = 64          # a weight ROM needing more block RAMs than this may go to UltraRAM
VALUES_PER_LINE = 24
VECTOR_ROWS = 8                # int32 lanes of a 256-bit vector
LONG_DOT = 32                  # window elements a vectorized dot product runs well on


@dataclass(eq=False)
class MVU(Stage):
    kind = "mvu"
    geometry: Geometry = None               # type: ignore[assignment]
    weights: torch.Tensor = None            # type: ignore[assignment]  # int64 [rows, window], centred
    bias: torch.Tensor | None = None
    x_offset: int = 0                       # subtracted from each window element (<= 0: a sign-bit flip)
    x_type: IntType = None                  # type: ignore[assignment]  # (x - x_offset), unsigned
    w_type: IntType = None                  # type: ignore[assignment]
    acc_type: IntType = None                # type: ignore[assignment]
    acc_range: tuple[int, int] = (0, 0)
    epilogue: list[Elementwise] = field(default_factory=list)
    window_stage: Stage | None = None

    @property
    def rows(self) -> int:
        return self.geometry.out_channels

    @property
    def fold_channels(self) -> int:
        return self.rows

    @property
    def product_type(self) -> IntType:
        lo = min(self.x_type.lo * self.w_type.hi, self.x_type.hi * self.w_type.lo, 0)
        hi = max(self.x_type.lo * self.w_type.lo, self.x_type.hi * self.w_type.hi, 0)
        return IntType.covering(lo, hi)

    def fold_options(self) -> list[tuple[int, int]]:
        g = self.geometry
        return [(pe, simd) for pe in divisors(self.rows) for simd in divisors(g.window)
                if g.simd_ok(simd) and pe * simd <= PARTITION_LIMIT]

    def cycles(self, pe=None, simd=None) -> int:
        pe, simd = self.fold(pe, simd)
        return self.geometry.out_pixels * (self.rows // pe) * (self.geometry.window // simd)

    def resources(self, part: Part, pe=None, simd=None) -> Resources:
        pe, simd = self.fold(pe, simd)
        g = self.geometry
        nf, sf = self.rows // pe, g.window // simd
        cache = memory(simd * self.inputs[0].elem.bits, sf, part) if g.groups == 1 and nf > 1 else Resources()
        return self.datapath(part, pe, simd, nf * sf) + cache + self.stream_resources(part)

    def datapath(self, part: Part, pe: int, simd: int, words: int) -> Resources:
        """PE lanes (SIMD multipliers, an adder tree, the accumulator, the epilogue), PE weight ROMs
        of `words` words of SIMD weights, the bias ROM and the control: all but the window's side."""
        prod = self.product_type
        lane = (multiplier(self.x_type.bits, self.w_type.bits, part) * simd
                + adder(prod.bits + math.ceil(math.log2(simd)) // 2 + 1) * (simd - 1)
                + adder(self.acc_type.bits) + chain_resources(self.epilogue, part))
        rom = memory(simd * self.w_type.bits, words, part)
        if rom.bram18 * pe > URAM_FROM_BRAM18 and part.uram:     # a large ROM: the scarcer memory of the two
            ultra = memory(simd * self.w_type.bits, words, part, ultra=True)
            rom = ultra if ultra.uram / part.uram < rom.bram18 / part.bram18 else rom
        bias = memory(self.acc_type.bits, self.rows // pe, part) * pe if self.bias is not None else Resources()
        return lane * pe + rom * pe + bias + Resources(lut=80)

    def lead(self) -> float:
        return self.geometry.words_per_window(self.pe, self.simd) / max(1, self.inputs[0].words)

    def partitioned(self) -> list[tuple[str, int]]:
        out = [(f"{self.name}_weights", self.pe), ("acc", self.pe)]
        if self.bias is not None and self.pe > 1:
            out.append((f"{self.name}_bias", self.pe))
        return out + chain_partitioned(self.epilogue, self.name, self.pe)

    def bits(self) -> dict[str, str]:
        return {"in": str(self.inputs[0].elem), "weights": str(self.w_type), "acc": str(self.acc_type),
                "out": str(self.outputs[0].elem)}

    def describe(self) -> str:
        g = self.geometry
        if g.flatten or (g.kernel == (1, 1) and g.height == g.width == 1):
            return f"linear {g.window} -> {self.rows}"
        kind = "conv" if g.groups == 1 else ("depthwise" if g.groups == g.channels else f"grouped/{g.groups}")
        return f"{kind} {g.kernel[0]}x{g.kernel[1]} {g.channels} -> {self.rows}"

    # ---- C++ -----------------------------------------------------------------------------
    def typedefs(self) -> list[str]:
        return [f"typedef {self.w_type.cpp} {self.name}_w_t;", f"typedef {self.x_type.cpp} {self.name}_x_t;",
                f"typedef {self.product_type.cpp} {self.name}_prod_t;", f"typedef {self.acc_type.cpp} {self.name}_acc_t;"]

    @property
    def rows_inner(self) -> bool:
        """Loop order of the unrolled PE x SIMD block in the C++: rows innermost when there are as
        many rows as elements, or enough rows to fill a vector register and short dot products.
        The hardware is the same either way; g++ vectorizes the inner loop, so the weights are
        stored with that loop's index last ([window][rows] or [rows][window])."""
        return self.pe >= self.simd or (self.pe >= VECTOR_ROWS and self.simd < LONG_DOT)

    def data_unit(self) -> tuple[list[str], str]:
        layout = "window elements x rows (output channels)" if self.rows_inner else \
            "rows (output channels) x window elements"
        decls, body = self.weight_rom(self.weights, layout + ", the window in the order its generator sends it")
        return decls, "\n".join(body) + "\n"

    def weight_rom(self, weights: torch.Tensor, layout: str) -> tuple[list[str], list[str]]:
        """(declarations, lines) of the weight ROM ([rows][elements] `weights`, stored transposed
        when rows are innermost) and the bias ROM."""
        matrix = weights.t() if self.rows_inner else weights
        shape = f"[{matrix.shape[0]}][{matrix.shape[1]}]"
        decls = [f"extern const {self.name}_w_t {self.name}_weights{shape};"]
        body = [f"// {self.name}: {layout};",
                f"// {self.w_type} codes with the weight zero point already subtracted.",
                '#include "design.h"', "",
                f"const {self.name}_w_t {self.name}_weights{shape} = {{"]
        for row in matrix.tolist():
            body.append("    {" + _wrap(row, 8) + "},")
        body.append("};")
        if self.bias is not None:
            rows = self.rows
            decls.append(f"extern const {self.name}_acc_t {self.name}_bias[{rows}];")
            body += ["", "// the bias at the accumulator's scale (s_x * s_w, the input's zero point folded in): the start",
                     f"const {self.name}_acc_t {self.name}_bias[{rows}] = {{", "    " + _wrap(self.bias.tolist(), 4), "};"]
        return decls, body

    def _pragmas(self) -> list[str]:
        wt = f"{self.name}_weights"
        rows_dim, cols_dim = (2, 1) if self.rows_inner else (1, 2)
        pragmas = [f"#pragma HLS ARRAY_PARTITION variable={wt} cyclic factor={self.pe} dim={rows_dim}",
                   f"#pragma HLS ARRAY_RESHAPE variable={wt} cyclic factor={self.simd} dim={cols_dim}"]
        if self.bias is not None:
            pragmas.append(f"#pragma HLS ARRAY_PARTITION variable={self.name}_bias cyclic factor={self.pe}")
        return pragmas + chain_pragmas(self.epilogue, self.name, self.pe)

    def _block(self) -> str:
        """One cycle's PE x SIMD products, the accumulators' start and the finished rows' epilogue."""
        lanes = self.geometry.groups > 1
        if lanes:
            element = "x.v[s * PE + pe]" if self.rows_inner else "x.v[pe * SIMD + s]"
        else:
            element = "x.v[s]"
        weight = f"{self.name}_weights[sf * SIMD + s][nf * PE + pe]" if self.rows_inner else \
            f"{self.name}_weights[nf * PE + pe][sf * SIMD + s]"
        i = " " * 16
        return (f"{i}if (sf == 0) {{\n{self.start_rows(i)}{i}}}\n" + self.products(i, element, weight)
                + f"{i}if (sf == SF - 1) {{\n{self.finish_rows(i)}{i}}}\n")

    def start_rows(self, indent: str) -> str:
        """The line that starts row fold nf's PE accumulators at the bias (or 0)."""
        start = f"{self.name}_acc_t({self.name}_bias[nf * PE + pe])" if self.bias is not None else \
            f"{self.name}_acc_t(0)"
        return f"{indent}    for (int pe = 0; pe < PE; pe++) acc[pe] = {start};\n"

    def finish_rows(self, indent: str) -> str:
        """The line that puts row fold nf's finished rows, through the epilogue, into the result word."""
        value = chain_expr(self.epilogue, "acc[pe]", "nf * PE + pe", self.name)
        return f"{indent}    for (int pe = 0; pe < PE; pe++) result.v[nf * PE + pe] = {value};\n"

    def products(self, indent: str, element: str, weight: str) -> str:
        """The unrolled PE x SIMD multiply-adds of one cycle (`element`, `weight`: C++ in s and pe),
        the loop order following `rows_inner`; the window operand is offset to unsigned here."""
        operand = f"{self.name}_x_t({element} - ({self.x_offset}))" if self.x_offset else element
        outer, inner = ("s", "pe") if self.rows_inner else ("pe", "s")
        bound = {"s": "SIMD", "pe": "PE"}
        i = indent
        return (f"{i}for (int {outer} = 0; {outer} < {bound[outer]}; {outer}++) {{\n"
                f"#pragma HLS UNROLL\n"
                f"{i}    for (int {inner} = 0; {inner} < {bound[inner]}; {inner}++) {{\n"
                f"#pragma HLS UNROLL\n"
                f"{i}        acc[pe] += nnf::mul<{self.name}_prod_t>({operand}, {weight});\n"
                f"{i}    }}\n"
                f"{i}}}\n")

    def emit(self) -> str:
        g, out = self.geometry, self.outputs[0]
        nf, sf = self.rows // self.pe, g.window // self.simd
        lanes, cached = g.groups > 1, g.groups == 1 and nf > 1
        read = ("                if (nf == 0) window[sf] = in.read();\n"
                f"                const {self.inputs[0].word_type}& x = window[sf];\n" if cached else
                f"                const {self.inputs[0].word_type} x = in.read();\n")
        cache = f"    {self.inputs[0].word_type} window[SF];   // the current window, reused by all NF row folds\n" if cached else ""
        epi = "; ".join(e.comment() for e in self.epilogue) or "none (the accumulator is the output)"
        tables = "".join(f"    {t}\n" for t in chain_tables(self.epilogue, self.name))   # declared before the pragmas
        order = "rows innermost" if self.rows_inner else "window elements innermost"
        notes = "".join(f"// Note: {n}\n" for n in self.notes)     # e.g. why an annotated layer stays dense
        return f"""\
// {self.name}: {self.describe()} over {g.out_pixels} output pixel(s) as a matrix-vector unit of {self.rows} rows x
// {g.window} window elements{" (each row reads its own group's window)" if lanes else ""}. PE={self.pe} rows x SIMD={self.simd} elements per cycle
// ({order}): NF={nf} x SF={sf} cycles per pixel. Accumulator {self.acc_type}: the proven range
// [{self.acc_range[0]}, {self.acc_range[1]}]. Epilogue of each finished row: {epi}.
{notes}{self.signature()} {{
    constexpr int PIXELS = {g.out_pixels}, PE = {self.pe}, SIMD = {self.simd}, NF = {nf}, SF = {sf};
{tables}{chr(10).join(self._pragmas())}
{cache}    {self.name}_acc_t acc[PE] = {{}};   // set from the bias at each row fold's first cycle
#pragma HLS ARRAY_PARTITION variable=acc complete
    {out.word_type} result;
    for (int pixel = 0; pixel < PIXELS; pixel++) {{
        for (int nf = 0; nf < NF; nf++) {{
            for (int sf = 0; sf < SF; sf++) {{
#pragma HLS PIPELINE II=1
                NNF_CYCLE({self.index});
{read}{self._block()}                if (nf == NF - 1 && sf == SF - 1) out.write(result);
            }}
        }}
    }}
}}
"""


def _wrap(values: list[int], indent: int) -> str:
    lines = [", ".join(str(v) for v in values[i:i + VALUES_PER_LINE]) for i in range(0, len(values), VALUES_PER_LINE)]
    return (",\n" + " " * indent).join(lines)

"""The sparse matrix-vector unit: a conv or linear layer whose weight carries a `SparsityAnnotation`
(simd-sparsify, docs/simd-sparsity.md) skips its zero weights.

Row fold nf (rows nf*PE .. nf*PE+PE-1) needs only the window positions where at least one of its
PE rows has a nonzero (centred) weight: its kept columns, K(nf) of the window's L. The weight ROM
holds, fold after fold, only those columns, SIMD to a word of PE x SIMD weights (the last word of
a fold padded with zero weights), and an index ROM holds the window position of each lane of each
word and a flag on the last word of each fold. Fold nf takes

    W(nf) = max(1, ceil(K(nf) / SIMD))        cycles, STEPS = sum over nf of W(nf) per pixel,

each cycle gathering SIMD elements of the cached window (one multiplexer per lane) for the PE x
SIMD multipliers. A fold whose weights are all zero still takes one word (of zero weights): its
rows are the bias through the epilogue, written like every other row.

The window still arrives as SF = L / SIMD words (the window generator does not change), into a
double buffer: pixel p + 1's words are written into `arriving` while pixel p computes from
`window`, and the received window becomes the current one in the last cycle of each pixel (a
register transfer). The first window is only received, the last pixel only computed, so a frame of
OP output pixels takes

    cycles = OP x max(SF, STEPS) + min(SF, STEPS)

against the dense unit's OP x NF x SF: with PE and SIMD equal, the ratio is the fraction of kept
columns (STEPS / (NF x SF), up to the padding of each fold's last word) as long as STEPS >= SF.
With fewer cycles per frame, the folding solver reaches a frame rate with fewer PE x SIMD lanes.

Resources (resources.py): per PE lane the dense unit's multipliers, adder tree, accumulator and
epilogue; PE weight ROMs of STEPS words (instead of NF x SF) of SIMD weights; the index ROM, STEPS
words of SIMD column indices of ceil(log2 L) bits plus the fold's end flag; the gather, SIMD
multiplexers of L elements of x bits, x bits x ceil((L - 1) / 3) LUTs each (a tree of 4:1
multiplexers, one LUT6 per bit); the cache's write decoder (SF LUTs). The double buffer itself is
2 x L x x-bits flip-flops, which the estimates do not count (for no stage).

Folding: every divisor of the rows is a valid PE (correctness never depends on it); skipping pays
where PE follows the pattern. With `simd` groups of `lanes` output channels, a PE dividing lanes
keeps every fold inside one group, so its kept columns are the group's (the layer's density); a
multiple of lanes keeps the union of PE / lanes groups; other PEs straddle groups. With `nm` (n of
every m input channels per output channel), PE = 1 keeps n / m of each row's columns, a larger PE
the union of its rows' (little skipping unless the rows share their pattern). The solver chooses
by cost, as for every stage. The epilogue, the bias, the input's offset, the accumulator's type and
the loop order (`rows_inner`) are the dense unit's (stages/mvu.py), and so is every sum: only zero
products are skipped, so the results are bit-exact.

Grouped and depthwise layers keep the dense vector unit (each PE lane reads its own group's
window: a gather per lane would not pay), as do layers whose window is longer than the HLS tool
partitions into registers; the stage's notes say so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from backends.hls.parts import Part
from backends.hls.resources import Resources, memory
from backends.hls.stages.base import PARTITION_LIMIT
from backends.hls.stages.epilogue import chain_tables
from backends.hls.stages.mvu import MVU, _wrap
from backends.hls.stages.window import Geometry
from backends.hls.types import IntType
from compiler.ir import Value
from compiler.sparse.annotation import SparsityAnnotation


def matrix_unit(weight: Value | None, geometry: Geometry) -> tuple[type[MVU], dict]:
    """The unit class of a layer and its extra fields: `SparseMVU` where the weight carries a
    SparsityAnnotation and the unit can skip, else the dense `MVU` (with a note why, if annotated)."""
    note = weight.annotation(SparsityAnnotation) if weight is not None else None
    if note is None:
        return MVU, {}
    what = f"the weight has {_pattern(note)} structured sparsity ({note.density:.0%} of its groups kept), but"
    if geometry.groups > 1:
        return MVU, {"notes": [f"{what} a grouped or depthwise layer keeps the dense vector unit: each PE lane "
                               "reads its own group's window, so there is no shared window to gather from"]}
    if geometry.window > PARTITION_LIMIT:
        return MVU, {"notes": [f"{what} its window of {geometry.window:,} elements is longer than the "
                               f"{PARTITION_LIMIT:,} registers a gather could be built from: the dense unit runs it"]}
    return SparseMVU, {"sparsity": note}


def _pattern(note: SparsityAnnotation) -> str:
    return f"{note.n}:{note.m}" if note.pattern == "nm" else f"SIMD-{note.lanes}"


@dataclass(eq=False)
class SparseMVU(MVU):
    sparsity: SparsityAnnotation = None     # type: ignore[assignment]
    _kept: dict[int, list[int]] = field(default_factory=dict, repr=False)

    # ---- the kept columns of each row fold ---------------------------------------------------
    def kept(self, pe: int) -> list[int]:
        """K(nf): for each row fold of PE rows, the window positions where one of its rows is nonzero."""
        if pe not in self._kept:
            nonzero = self.weights.ne(0).reshape(self.rows // pe, pe, -1).any(1)
            self._kept[pe] = nonzero.sum(1).tolist()
        return self._kept[pe]

    def words(self, pe: int, simd: int) -> list[int]:
        """W(nf) = max(1, ceil(K(nf) / SIMD)): the words (cycles) of each row fold."""
        return [max(1, -(-k // simd)) for k in self.kept(pe)]

    def steps(self, pe: int | None = None, simd: int | None = None) -> int:
        pe, simd = self.fold(pe, simd)
        return sum(self.words(pe, simd))

    @property
    def col_type(self) -> IntType:
        return IntType.covering(0, self.geometry.window - 1)

    # ---- estimates ------------------------------------------------------------------------
    def cycles(self, pe=None, simd=None) -> int:
        pe, simd = self.fold(pe, simd)
        sf, steps = self.geometry.window // simd, self.steps(pe, simd)
        return self.geometry.out_pixels * max(sf, steps) + min(sf, steps)

    def resources(self, part: Part, pe=None, simd=None) -> Resources:
        pe, simd = self.fold(pe, simd)
        window, steps = self.geometry.window, self.steps(pe, simd)
        index = memory(simd * self.col_type.bits + 1, steps, part)
        gather = Resources(lut=simd * self.inputs[0].elem.bits * math.ceil((window - 1) / 3) + window // simd)
        return self.datapath(part, pe, simd, steps) + index + gather + self.stream_resources(part)

    def partitioned(self) -> list[tuple[str, int]]:
        window = self.geometry.window
        return super().partitioned() + [("window", window), ("arriving", window)]

    def sparsity_info(self) -> dict:
        """What the report shows: the annotation, the weights kept, and the columns and words read."""
        nf, sf = self.rows // self.pe, self.geometry.window // self.simd
        kept = sum(self.kept(self.pe))
        return {"pattern": _pattern(self.sparsity), "groups_kept": round(self.sparsity.density, 4),
                "nonzero_weights": round(float(self.weights.ne(0).double().mean()), 4),
                "kept_columns": kept, "columns": nf * self.geometry.window,
                "words": self.steps(), "dense_words": nf * sf}

    def describe(self) -> str:
        info = self.sparsity_info()
        return f"{super().describe()}, {info['pattern']} sparse: {info['kept_columns'] / info['columns']:.0%} of columns"

    # ---- C++ ------------------------------------------------------------------------------
    def typedefs(self) -> list[str]:
        return super().typedefs() + [f"typedef {self.col_type.cpp} {self.name}_col_t;"]

    def packed(self) -> tuple[torch.Tensor, list[int], list[bool]]:
        """The kept weights [PE, STEPS x SIMD] (zero-padded words), each lane's window position, and
        for each word whether it ends its row fold."""
        pe, simd = self.pe, self.simd
        weights, columns, last = [], [], []
        for nf, words in enumerate(self.words(pe, simd)):
            rows = self.weights[nf * pe:(nf + 1) * pe]
            cols = rows.ne(0).any(0).nonzero().flatten()
            pad = words * simd - len(cols)
            weights.append(torch.cat([rows[:, cols], torch.zeros(pe, pad, dtype=rows.dtype)], 1))
            columns += cols.tolist() + [0] * pad       # a padding lane reads element 0 times weight 0
            last += [False] * (words - 1) + [True]
        return torch.cat(weights, 1), columns, last

    def data_unit(self) -> tuple[list[str], str]:
        weights, columns, last = self.packed()
        layout = ("kept window elements x the PE rows of their fold" if self.rows_inner else
                  "the PE rows of a fold x their kept window elements") + \
            f", fold after fold in words of SIMD={self.simd} (zero-padded)"
        decls, body = self.weight_rom(weights, layout)
        n = len(last)
        decls += [f"extern const {self.name}_col_t {self.name}_columns[{n * self.simd}];",
                  f"extern const bool {self.name}_last[{n}];"]
        body += ["", "// the window position each lane of each word gathers (its weight's column)",
                 f"const {self.name}_col_t {self.name}_columns[{n * self.simd}] = {{", "    " + _wrap(columns, 4), "};",
                 "", "// 1 on the last word of each row fold: its rows are finished",
                 f"const bool {self.name}_last[{n}] = {{", "    " + _wrap([int(v) for v in last], 4), "};"]
        return decls, "\n".join(body) + "\n"

    def emit(self) -> str:
        g, out, info = self.geometry, self.outputs[0], self.sparsity_info()
        nf, sf, steps = self.rows // self.pe, g.window // self.simd, self.steps()
        weight = f"{self.name}_weights[t * SIMD + s][pe]" if self.rows_inner else f"{self.name}_weights[pe][t * SIMD + s]"
        i = " " * 16
        epi = "; ".join(e.comment() for e in self.epilogue) or "none (the accumulator is the output)"
        tables = "".join(f"    {t}\n" for t in chain_tables(self.epilogue, self.name))   # declared before the pragmas
        order = "rows innermost" if self.rows_inner else "window elements innermost"
        notes = "".join(f"// Note: {n}\n" for n in self.notes)
        return f"""\
// {self.name}: {super().describe()} over {g.out_pixels} output pixel(s) as a sparse matrix-vector unit of {self.rows} rows x
// {g.window} window elements ({info['pattern']} structured sparsity, {info['nonzero_weights']:.0%} of the weights nonzero). Row fold nf
// (PE={self.pe} rows) reads only the window positions where one of its rows has a nonzero weight:
// {info['kept_columns']} of {info['columns']}, in STEPS={steps} words of SIMD={self.simd} gathered elements ({order})
// instead of NF={nf} x SF={sf}. A window arrives as SF={sf} words into `arriving` while the previous pixel
// computes from `window` (double-buffered): max(SF, STEPS)={max(sf, steps)} cycles per pixel. Accumulator
// {self.acc_type}: the proven range [{self.acc_range[0]}, {self.acc_range[1]}]. Epilogue of each finished row: {epi}.
{notes}{self.signature()} {{
    constexpr int PIXELS = {g.out_pixels}, PE = {self.pe}, SIMD = {self.simd}, SF = {sf}, STEPS = {steps}, L = {g.window};
{tables}{chr(10).join(self._pragmas())}
#pragma HLS ARRAY_RESHAPE variable={self.name}_columns cyclic factor={self.simd}
    // registers: every lane may gather any element of the window in the same cycle
    {self.inputs[0].elem_type} window[L], arriving[L];
#pragma HLS ARRAY_PARTITION variable=window complete
#pragma HLS ARRAY_PARTITION variable=arriving complete
    {self.name}_acc_t acc[PE] = {{}};   // set from the bias at each row fold's first word
#pragma HLS ARRAY_PARTITION variable=acc complete
    {out.word_type} result;
    // phase p receives window p and computes pixel p - 1: the first phase only receives, the last only computes
    for (int p = 0; p <= PIXELS; p++) {{
        const bool receiving = p < PIXELS, computing = p > 0;
        const int steps = receiving && computing ? (SF > STEPS ? SF : STEPS) : (receiving ? SF : STEPS);
        int nf = 0;          // the row fold of word t
        bool first = true;   // word t starts its row fold
        for (int t = 0; t < steps; t++) {{
#pragma HLS PIPELINE II=1
            NNF_CYCLE({self.index});
            if (receiving && t < SF) {{
                const {self.inputs[0].word_type} x = in.read();
                for (int s = 0; s < SIMD; s++) arriving[t * SIMD + s] = x.v[s];
            }}
            if (computing && t < STEPS) {{
                if (first) {{
{self.start_rows(i)}                }}
{self.products(i, f"window[{self.name}_columns[t * SIMD + s]]", weight)}                if ({self.name}_last[t]) {{
{self.finish_rows(i)}                    nf++;
                }}
                first = {self.name}_last[t];
            }}
            if (t == steps - 1) {{
                if (computing) out.write(result);
                // the received window becomes the current one (a register transfer, the same cycle)
                for (int j = 0; j < L; j++) window[j] = arriving[j];
            }}
        }}
    }}
}}
"""

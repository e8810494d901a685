"""The C simulation testbench: whole batches through the design in one run, binary files in and out.

    csim INPUTS OUTPUTS CYCLES FRAMES

INPUTS holds, for each design input in order, FRAMES samples of float32 in the graph's [C, H, W]
order; the testbench quantizes them as the graph's `quantize` does (x / scale in float32, round
half to even, + zero point, clamp), streams them pixel by pixel, runs the top function once per
frame, and dequantizes each output as the graph's `dequantize` does ((q - zp) in integers, times
the scale in float32). OUTPUTS gets, per output, FRAMES samples as float64 (exact for float32 and
for integers); CYCLES the loop iterations each stage ran (nnf_cycles), summed over the frames.
"""
from __future__ import annotations

import struct

from backends.hls.build import Boundary, Design
from backends.hls.emit.sources import HEADER, top_name


def hex_float(x: float) -> str:
    """A float32 constant spelled exactly (C++17 hexadecimal literal)."""
    f = struct.unpack("<f", struct.pack("<f", x))[0]
    return f"{float(f).hex()}f"


def _array(name: str, ctype: str, values: list[str]) -> str:
    return f"static const {ctype} {name}[{len(values)}] = {{{', '.join(values)}}};"


def _shape(b: Boundary) -> tuple[int, int, int]:
    s = b.sample_shape
    return (s[0], s[1], s[2]) if len(s) == 3 else (s[0], 1, 1)


def testbench(design: Design, io: str) -> str:
    consts, frame_io, args = [], [], []
    for i, b in enumerate(design.inputs):
        c, h, w = _shape(b)
        p = b.port
        consts += [_array(f"in{i}_scale", "float", [hex_float(s) for s in b.scale]),
                   _array(f"in{i}_zero_point", "int32_t", [str(z) for z in b.zero_point])]
        scale = "in{i}_scale[c]" if len(b.scale) > 1 else "in{i}_scale[0]"
        zp = "in{i}_zero_point[c]" if len(b.zero_point) > 1 else "in{i}_zero_point[0]"
        store = "in" + str(i) + ".write(word)" if io == "stream" else f"in{i}[q] = word"
        if b.order is not None:      # the port's own order (host_reorder): a table of source elements
            consts.append(_array(f"in{i}_order", "int32_t", [str(e) for e in b.order]))
            channel = f"[e / {h * w}]"          # a per-channel parameter's index for element e
            frame_io.append(f"""\
        {{   // input {i}: %{b.value.name}, {c}x{h}x{w} floats -> {p.words} words of {p.channels} {p.elem} codes, in the port's order
            const float* x = inputs + in_offset[{i}] + f * {c * h * w}L;
            for (int q = 0; q < {p.words}; q++) {{
                {p.word_type} word;
                for (int k = 0; k < {p.channels}; k++) {{
                    const int e = in{i}_order[q * {p.channels} + k];   // the element's [C, H, W] index
                    word.v[k] = {p.elem_type}(quantize(x[e], {scale.replace("[c]", channel).format(i=i)}, {zp.replace("[c]", channel).format(i=i)}, {b.qmin}, {b.qmax}));
                }}
                {store};
            }}
        }}""")
            args.append(f"in{i}")
            continue
        frame_io.append(f"""\
        {{   // input {i}: %{b.value.name}, {c}x{h}x{w} floats -> {p.words} words of {p.channels} {p.elem} codes
            const float* x = inputs + in_offset[{i}] + f * {c * h * w}L;
            for (int y = 0; y < {h}; y++) {{
                for (int xx = 0; xx < {w}; xx++) {{
                    {p.word_type} word;
                    for (int c = 0; c < {c}; c++) {{
                        word.v[c] = {p.elem_type}(quantize(x[(c * {h} + y) * {w} + xx], {scale.format(i=i)}, {zp.format(i=i)}, {b.qmin}, {b.qmax}));
                    }}
                    {"in" + str(i) + ".write(word)" if io == "stream" else f"in{i}[y * {w} + xx] = word"};
                }}
            }}
        }}""")
        args.append(f"in{i}")
    collect = []
    for i, b in enumerate(design.outputs):
        c, h, w = _shape(b)
        p = b.port
        if b.node is not None:
            consts += [_array(f"out{i}_scale", "float", [hex_float(s) for s in b.scale]),
                       _array(f"out{i}_zero_point", "int32_t", [str(z) for z in b.zero_point])]
            scale = f"out{i}_scale[c]" if len(b.scale) > 1 else f"out{i}_scale[0]"
            zp = f"out{i}_zero_point[c]" if len(b.zero_point) > 1 else f"out{i}_zero_point[0]"
            value = f"double(float(int64_t(word.v[c]) - {zp}) * {scale})"
        else:
            value = "double(int64_t(word.v[c]))"
        if b.order is not None:      # the port's own order (host_reorder): a table of destinations
            consts.append(_array(f"out{i}_order", "int32_t", [str(e) for e in b.order]))
            read = f"const {p.word_type} word = out{i}.read();" if io == "stream" else f"const {p.word_type}& word = out{i}[q];"
            collect.append(f"""\
        {{   // output {i}: %{b.value.name}, {p.words} words of {p.channels} {p.elem} in the port's order -> {c}x{h}x{w} values
            double* y_out = outputs + out_offset[{i}] + f * {c * h * w}L;
            for (int q = 0; q < {p.words}; q++) {{
                {read}
                for (int k = 0; k < {p.channels}; k++) {{
                    const int e = out{i}_order[q * {p.channels} + k];   // the element's [C, H, W] index
                    y_out[e] = {value.replace("word.v[c]", "word.v[k]").replace("[c]", f"[e / {h * w}]")};
                }}
            }}
        }}""")
            args.append(f"out{i}")
            continue
        read = f"const {p.word_type} word = out{i}.read();" if io == "stream" else f"const {p.word_type}& word = out{i}[y * {w} + xx];"
        collect.append(f"""\
        {{   // output {i}: %{b.value.name}, {p.words} words of {p.channels} {p.elem} -> {c}x{h}x{w} values
            double* y_out = outputs + out_offset[{i}] + f * {c * h * w}L;
            for (int y = 0; y < {h}; y++) {{
                for (int xx = 0; xx < {w}; xx++) {{
                    {read}
                    for (int c = 0; c < {c}; c++) y_out[(c * {h} + y) * {w} + xx] = {value};
                }}
            }}
        }}""")
        args.append(f"out{i}")
    declare = [(f"nnf::stream<{b.port.word_type}> in{i};" if io == "stream" else f"static {b.port.word_type} in{i}[{b.port.words}];")
               for i, b in enumerate(design.inputs)]
    declare += [(f"nnf::stream<{b.port.word_type}> out{i};" if io == "stream" else f"static {b.port.word_type} out{i}[{b.port.words}];")
                for i, b in enumerate(design.outputs)]
    sizes_in = [str(_numel(b)) for b in design.inputs]
    sizes_out = [str(_numel(b)) for b in design.outputs]
    nl = "\n"
    return f"""\
{HEADER}
// C simulation testbench of {design.name}: csim INPUTS OUTPUTS CYCLES FRAMES (float32 in, float64 out).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "design.h"

{nl.join(consts)}

// quantize: clamp(round_half_even(x / scale) + zero_point, qmin, qmax), in float32 as the graph's op
static int64_t quantize(float x, float scale, int32_t zero_point, float qmin, float qmax) {{
    float q = std::nearbyint(x / scale) + float(zero_point);
    q = q < qmin ? qmin : (q > qmax ? qmax : q);
    return int64_t(q);
}}

// Runs FRAMES frames through the design: inputs float32 (per input, FRAMES samples in [C, H, W]
// order), outputs float64 (the same per output), cycles[s] = the loop iterations of stage s.
// Returns 0, or 1 when a stream was read empty (a stage read more words than it was sent).
extern "C" int nnf_csim(const float* inputs, double* outputs, uint64_t* cycles, long frames) {{
    const long in_sizes[] = {{{", ".join(sizes_in)}}};
    const long out_sizes[] = {{{", ".join(sizes_out) or "0"}}};
    long in_offset[{len(sizes_in)}], out_offset[{max(1, len(sizes_out))}], in_total = 0, out_total = 0;
    for (int i = 0; i < {len(sizes_in)}; i++) {{ in_offset[i] = in_total; in_total += frames * in_sizes[i]; }}
    for (int i = 0; i < {len(sizes_out)}; i++) {{ out_offset[i] = out_total; out_total += frames * out_sizes[i]; }}
    for (int s = 0; s < NNF_STAGES; s++) nnf_cycles[s] = 0;
    nnf::stream_errors() = 0;
    {nl.join("    " + d for d in declare).strip()}
    for (long f = 0; f < frames && nnf::stream_errors() == 0; f++) {{
{nl.join(frame_io)}
        {top_name(design)}({", ".join(args)});
{nl.join(collect)}
    }}
    for (int s = 0; s < NNF_STAGES; s++) cycles[s] = nnf_cycles[s];
    return nnf::stream_errors() == 0 ? 0 : 1;
}}

// csim INPUTS OUTPUTS CYCLES FRAMES: the same from files (CYCLES: "stage iterations" lines).
int main(int argc, char** argv) {{
    if (argc != 5) {{
        std::fprintf(stderr, "usage: %s INPUTS OUTPUTS CYCLES FRAMES\\n", argv[0]);
        return 2;
    }}
    const long frames = std::atol(argv[4]);
    std::vector<float> inputs(frames * ({" + ".join(sizes_in)}));
    std::vector<double> outputs(frames * ({" + ".join(sizes_out) or "0"}));
    std::vector<uint64_t> cycles(NNF_STAGES);
    FILE* in = std::fopen(argv[1], "rb");
    if (in == nullptr || std::fread(inputs.data(), sizeof(float), inputs.size(), in) != inputs.size()) {{
        std::fprintf(stderr, "cannot read %zu floats from %s\\n", inputs.size(), argv[1]);
        return 1;
    }}
    std::fclose(in);
    if (nnf_csim(inputs.data(), outputs.data(), cycles.data(), frames) != 0) return 1;
    FILE* out = std::fopen(argv[2], "wb");
    if (out == nullptr || std::fwrite(outputs.data(), sizeof(double), outputs.size(), out) != outputs.size()) {{
        std::fprintf(stderr, "cannot write %s\\n", argv[2]);
        return 1;
    }}
    std::fclose(out);
    FILE* counts = std::fopen(argv[3], "w");
    if (counts == nullptr) return 1;
    for (int s = 0; s < NNF_STAGES; s++) std::fprintf(counts, "%d %llu\\n", s, (unsigned long long)cycles[s]);
    std::fclose(counts);
    return 0;
}}
"""


def _numel(b: Boundary) -> int:
    c, h, w = _shape(b)
    return c * h * w

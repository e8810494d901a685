"""Resource formulas: what memories, multipliers and adders of given bit widths cost on a part.

The stage estimates (stages/*.py) are sums of these primitives; the numbers are first-order
models of how Vivado maps HLS operators, documented in docs/hls.md:

* a memory of `depth` words of `width` bits: distributed (LUT) RAM when it is at most 64 words
  deep or holds at most 1 Kb (one LUT per bit of width per 64 words); else 18 Kb block RAMs in the
  cheapest aspect ratio (16K x 1 ... 512 x 36); else, where asked and the part has them, 288 Kb
  UltraRAMs (4K x 72, narrower words packed into the 72-bit rows);
* a multiplier of a x b bits: LUTs (about a*b) when a + b <= 10, else DSP slices, one per
  27 x 18 (25 x 18 on 7-series) partial product, the operands oriented the cheaper way;
* an adder or comparator of n bits: n LUTs; a register stage is flip-flops (not counted).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

from backends.hls.parts import Part

BRAM18_SHAPES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))
LUTRAM_DEPTH = 64
LUTRAM_BITS = 1024
LUT_MULTIPLIER_BITS = 10      # a + b at most this: the product is built from LUTs


@dataclass(frozen=True)
class Resources:
    dsp: int = 0
    lut: int = 0
    bram18: int = 0
    uram: int = 0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __mul__(self, n: int) -> "Resources":
        return Resources(*(getattr(self, f.name) * n for f in fields(self)))

    def as_dict(self) -> dict[str, int]:
        return {"DSP": self.dsp, "LUT": self.lut, "BRAM18": self.bram18, "URAM": self.uram}

    def fractions(self, part: Part) -> dict[str, float]:
        """Each resource as a fraction of the part's (0 where the part has none and none is used)."""
        budget = part.budget()
        return {k: (v / budget[k] if budget[k] else (math.inf if v else 0.0)) for k, v in self.as_dict().items()}


def total(items) -> Resources:
    out = Resources()
    for r in items:
        out = out + r
    return out


def memory(width: int, depth: int, part: Part, *, ultra: bool = False) -> Resources:
    """A RAM or ROM of `depth` words of `width` bits (one read port per cycle)."""
    if width <= 0 or depth <= 0:
        return Resources()
    if depth <= LUTRAM_DEPTH or width * depth <= LUTRAM_BITS:
        return Resources(lut=width * math.ceil(depth / LUTRAM_DEPTH))
    if ultra and part.uram:     # narrow words are packed into the 72-bit rows (ARRAY_RESHAPE)
        per_row = max(1, 72 // width)
        return Resources(uram=math.ceil(width / 72) * math.ceil(depth / (4096 * per_row)))
    return Resources(bram18=min(math.ceil(width / w) * math.ceil(depth / d) for w, d in BRAM18_SHAPES))


def multiplier(a_bits: int, b_bits: int, part: Part) -> Resources:
    """One a x b-bit product per cycle."""
    if a_bits + b_bits <= LUT_MULTIPLIER_BITS:
        return Resources(lut=a_bits * b_bits)
    wide, narrow = part.dsp_shape
    slices = min(math.ceil(a_bits / wide) * math.ceil(b_bits / narrow),
                 math.ceil(b_bits / wide) * math.ceil(a_bits / narrow))
    return Resources(dsp=slices)


def adder(bits: int) -> Resources:
    return Resources(lut=bits)


def fifo(width: int, depth: int, part: Part) -> Resources:
    """A stream FIFO: registers for depth <= 2, shift-register LUTs (SRL32) up to 1 Kb, else RAM."""
    if depth <= 2:
        return Resources()
    if width * depth <= LUTRAM_BITS:
        return Resources(lut=width * math.ceil(depth / 32))
    return memory(width, depth, part)


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]

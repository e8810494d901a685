"""Integer types of the design: the narrowest width that holds a value's proven range.

Every stream element, weight, accumulator and intermediate of the generated C++ gets an `IntType`
from the range analysis (ranges.py): `ap_int<W>`/`ap_uint<W>` under the HLS tool and, for g++ C
simulation, the standard integer type of at least W bits (cpp/nnf_types.h). Because a value never
leaves its proven range, the two compute identical results.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IntType:
    bits: int
    signed: bool

    @staticmethod
    def covering(lo: int, hi: int) -> "IntType":
        """The narrowest type holding every integer in [lo, hi] (unsigned when lo >= 0)."""
        lo, hi = int(lo), int(hi)
        if lo >= 0:
            return IntType(max(1, hi.bit_length()), False)
        bits = max((-lo - 1).bit_length(), hi.bit_length() if hi > 0 else 0) + 1
        return IntType(bits, True)

    @property
    def lo(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def cpp(self) -> str:
        return f"nnf::{'int' if self.signed else 'uint'}_t<{self.bits}>"

    def __str__(self) -> str:
        return f"{'i' if self.signed else 'u'}{self.bits}"

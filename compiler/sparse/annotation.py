"""`SparsityAnnotation`: which structured-sparsity pattern a weight follows, for passes and backends.

It sits on a weight value that `simd-sparsify` zeroed. The zeros themselves are the mask: a group
is kept when any of its weights is nonzero, so the annotation holds only what cannot be read off
the tensor: the pattern, the shape of one group in the weight's matrix form (`WeightLayout.matrices`:
rows are output channels, columns input positions), and how many groups were kept.

* `simd`: a group is `lanes` consecutive output channels at one input position, shape (lanes, 1);
  the last group of a layer whose output channels are not a multiple of `lanes` is shorter.
* `nm`: of every `m` consecutive input channels at one kernel position, `n` weights are kept in
  each output channel (2:4); a group is one weight, shape (1, 1).
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, fields

from compiler.annotations import Annotation

PATTERNS = ("simd", "nm")


@dataclass(frozen=True)
class SparsityAnnotation(Annotation):
    """pattern: simd | nm; group: (rows, columns) of one group in the matrix form; n, m: the N:M
    ratio (nm only); kept, total: groups kept and groups in the weight; density = kept / total."""

    tag = "sparsity"

    pattern: str
    group: tuple[int, int]
    kept: int
    total: int
    n: int = 0
    m: int = 0

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(f"sparsity pattern must be one of {PATTERNS}, got {self.pattern!r}")
        if not 0 <= self.kept <= self.total:
            raise ValueError(f"kept groups ({self.kept}) must be within 0..{self.total}")

    def describe(self) -> str:
        """Only the fields that differ from their defaults (the parser fills in the rest)."""
        parts = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                          if f.default is MISSING or getattr(self, f.name) != f.default)
        return f"{self.tag}<{parts}>"

    @property
    def density(self) -> float:
        return self.kept / self.total if self.total else 1.0

    @property
    def lanes(self) -> int:
        """Output channels per group (simd): the vector width the sparse kernel runs."""
        return self.group[0]

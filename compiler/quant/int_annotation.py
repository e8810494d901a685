"""`IntAnnotation`: what real number an integer tensor of the integer form stands for.

real = (q - zero_point) * scale, per tensor or per channel along `axis`. `scale` and `zero_point`
name float32 / int32 constants of the graph; `format` is the code's width and signedness
(int8, uint8, int4 held in int8, int32 accumulators). Written by `integerize` on every integer
result, read by the backends that reproduce the integer form (docs/integer-form.md).
"""
from __future__ import annotations

from dataclasses import dataclass

from compiler.annotations import Annotation
from compiler.quant.annotation import QuantAnnotation


@dataclass(frozen=True)
class IntAnnotation(Annotation):
    tag = "int"

    format: str
    scale: str
    zero_point: str | None = None
    axis: int | None = None

    describe = QuantAnnotation.describe  # the fields that differ from their defaults

    def references(self) -> tuple[str, ...]:
        return tuple(name for name in (self.scale, self.zero_point) if name)

"""`QuantAnnotation`: what a quantized value is, for the passes and backends that read it.

It sits on the output of every `fake_quant` node (and stays on a constant when a quantized weight
is folded). The numbers themselves live in the graph: `scale`, `zero_point` and `tensor_scale`
name the constant values holding them, so an HLS or crossbar backend reads format, scale, zero
point and granularity from here instead of re-deriving them.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, fields

from compiler.annotations import Annotation

GRANULARITIES = ("tensor", "channel", "group")


@dataclass(frozen=True)
class QuantAnnotation(Annotation):
    """format: a name `compiler.quant.parse_format` understands (int8, fp4-e2m1, mxfp4, ...);
    granularity: tensor | channel (one scale along `axis`) | group (blocks of `block_size` along
    `axis`); role: weight | activation; exponent_bias: for a per-tensor ExMy format, the real-valued
    exponent bias the scale encodes (default bias - log2 scale); preshift: per-channel power-of-two
    factors around a shared tensor scale, which `fold-preshifted-bias` moves into the next layer."""

    tag = "quant"

    format: str
    granularity: str = "tensor"
    axis: int | None = None
    block_size: int = 0
    scale: str = ""
    zero_point: str | None = None
    tensor_scale: str | None = None
    role: str = "activation"
    exponent_bias: float | None = None
    preshift: bool = False

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {self.granularity!r}")

    def describe(self) -> str:
        """Only the fields that differ from their defaults (the parser fills in the rest)."""
        parts = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                          if f.default is MISSING or getattr(self, f.name) != f.default)
        return f"{self.tag}<{parts}>"

    def references(self) -> tuple[str, ...]:
        return tuple(name for name in (self.scale, self.zero_point, self.tensor_scale) if name)

    def spec(self):
        """The format object (bits, grid, kernels)."""
        from compiler.quant.formats import parse_format
        return parse_format(self.format)

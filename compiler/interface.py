"""What a model looks like from outside: the names, order and declared dims of its inputs and
outputs in the file it came from, and what its import had to change.

The IR renames values freely (sanitized names, `dense_5` becoming `dense_50_1` after a rewrite),
but a compiled model must be a drop-in replacement for the original: libraries feed models by
name. A frontend that reads a model file records its `Interface` on `Graph.interface`; backends
name the artifact's inputs and outputs after it, by position (passes never add, drop or reorder
graph inputs or outputs).
"""
from __future__ import annotations

from dataclasses import dataclass, field

Dim = int | str   # a static size, or the name of a dynamic dim ("?" when unnamed)


@dataclass(frozen=True)
class Port:
    name: str                          # exactly as the source model spells it
    dims: tuple[Dim, ...] | None = None  # as declared; None when not even the rank is declared

    def specialised(self, shape: tuple[int, ...]) -> list[str]:
        """`dim 0 (batch) = 1` for each dynamic dim the static IR shape fixes."""
        if self.dims is None or len(self.dims) != len(shape):
            return []
        return [f"dim {i} ({d}) = {n}" for i, (d, n) in enumerate(zip(self.dims, shape)) if isinstance(d, str)]


@dataclass
class Interface:
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    notes: list[str] = field(default_factory=list)   # what the import changed, for the report

    def fits(self, num_inputs: int, num_outputs: int) -> bool:
        return len(self.inputs) == num_inputs and len(self.outputs) == num_outputs

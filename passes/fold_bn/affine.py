"""Per-channel affine maps read off the IR: y = x * scale + shift along one axis of x.

An inference batch_norm is one (scale = gamma / sqrt(var + eps), shift = beta - mean * scale,
along dim 1); so is a mul / add / sub / div of a non-constant value by a constant that varies
along at most one axis and does not broadcast the result beyond x. Everything is float64.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from compiler.ir import Node, Value

AFFINE_OPS = frozenset({"batch_norm", "mul", "add", "sub", "div"})


@dataclass(frozen=True)
class Affine:
    """`node` computes x * scale + shift; scale/shift vary along `axis` of x (None: scalars)."""

    node: Node
    x: Value
    axis: int | None
    scale: torch.Tensor | None  # float64 [n] (n = x.shape[axis], or 1 when axis is None)
    shift: torch.Tensor | None

    def vectors(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, shift) as float64 vectors of length n (missing parts are 1 and 0)."""
        def full(t: torch.Tensor | None, fill: float) -> torch.Tensor:
            if t is None:
                return torch.full((n,), fill, dtype=torch.float64)
            return t.expand(n) if t.numel() == 1 else t
        return full(self.scale, 1.0), full(self.shift, 0.0)

    def shifts(self) -> bool:
        return self.shift is not None and bool((self.shift != 0).any())

    def fits(self, axis: int) -> bool:
        """Whether the map is per-channel along `axis` of x (or uniform)."""
        return self.axis is None or self.axis == axis % self.x.rank


def _f64(v: Value | None) -> torch.Tensor | None:
    return None if v is None else v.data.detach().to(torch.float64)


def _batch_norm(node: Node) -> Affine | str:
    x, stats = node.inputs[0], list(node.inputs[1:5]) + [None] * (5 - len(node.inputs))
    if any(v is not None and v.data is None for v in stats):
        return "non-constant-operand"
    if x.rank < 2 or not x.dtype.is_floating_point:
        return "channel-mismatch"
    mean, var, gamma, beta = (_f64(v) for v in stats)
    scale = torch.rsqrt(var + node.attrs["eps"])
    if gamma is not None:
        scale = scale * gamma
    shift = -mean * scale + (beta if beta is not None else 0.0)
    return Affine(node, x, 1, scale, shift)


def _elementwise(node: Node) -> Affine | str | None:
    a, b = node.inputs
    if (a.data is None) == (b.data is None):
        return None  # both or neither constant: not an affine map of one tensor
    x, c, const_first = (b, a, True) if a.data is not None else (a, b, False)
    out = node.outputs[0]
    if out.type != x.type or not x.dtype.is_floating_point or not c.dtype.is_floating_point:
        return "broadcast-or-dtype-change"
    if c.rank > x.rank:
        return "broadcast-or-dtype-change"
    shape = (1,) * (x.rank - c.rank) + c.shape
    varying = [d for d, n in enumerate(shape) if n != 1]
    if len(varying) > 1:
        return "not-per-channel"
    axis = varying[0] if varying else None
    vec = _f64(c).reshape(-1)
    op = node.op
    if op == "mul":
        return Affine(node, x, axis, vec, None)
    if op == "add":
        return Affine(node, x, axis, None, vec)
    if op == "sub":
        return Affine(node, x, axis, -torch.ones_like(vec), vec) if const_first else Affine(node, x, axis, None, -vec)
    if op == "div" and not const_first and node.attrs.get("rounding_mode") is None:
        return Affine(node, x, axis, 1.0 / vec, None)
    return "not-affine"


def affine_of(node: Node) -> Affine | str | None:
    """The node's affine map, a reason it is not one, or None when it is no candidate at all."""
    if node.op == "batch_norm":
        return _batch_norm(node)
    if node.op in ("mul", "add", "sub", "div"):
        return _elementwise(node)
    return None

"""Elementwise integer ops applied to each element a stage writes (or reads): requantize, and
maximum / minimum with a constant (the clamp of a ReLU that met no requantize).

They are fused into the stage that produces their input (an epilogue, applied per PE lane as a row
finishes) or, in front of an add or concat, into that stage's reading side (a prologue: the skip
stream then carries 8-bit codes instead of 32-bit values). The C++ is one call of cpp/nnf_types.h
per op, with the op's constants inlined when per tensor and in a small ROM when per channel.
"""
from __future__ import annotations

from dataclasses import dataclass

from backends.hls.parts import Part
from backends.hls.resources import Resources, adder, multiplier
from backends.hls.types import IntType
from compiler.ir import Node


def channel_params(t, channels: int) -> list[int]:
    """A constant as per-channel ints: one value (per tensor) or `channels` values."""
    if t is None:
        return [0]
    flat = [int(v) for v in t.reshape(-1).tolist()]
    if len(set(flat)) == 1:
        return flat[:1]
    if len(flat) != channels:
        raise ValueError(f"expected 1 or {channels} parameters, got {len(flat)}")
    return flat


@dataclass(eq=False)
class Elementwise:
    node: Node
    in_type: IntType
    out: IntType
    params: dict[str, list[int]]            # name -> one value, or one per channel

    @staticmethod
    def of(node: Node, in_type: IntType, out: IntType, channels: int) -> "Elementwise":
        if node.op == "requantize":
            names = ("multiplier", "shift", "x_zero_point", "zero_point")
            params = {n: channel_params(node.inputs[i].data if i < len(node.inputs) and node.inputs[i] is not None
                                        else None, channels) for i, n in enumerate(names, start=1)}
        else:
            const = next(v for v in node.inputs if v.data is not None)
            params = {"bound": channel_params(const.data, channels)}
        return Elementwise(node, in_type, out, params)

    @property
    def op(self) -> str:
        return self.node.op

    def product_bits(self) -> int:
        """Bits of (x - x_zero_point) * multiplier (multipliers are below 2^31), and at least the
        shift + 2, so the rounding's remainder and half fit as well."""
        xz = self.params["x_zero_point"]
        centred = IntType.covering(self.in_type.lo - max(xz), self.in_type.hi - min(xz))
        return min(64, max(centred.bits + 31 + (0 if centred.signed else 1), max(self.params["shift"]) + 2))

    def constant(self, name: str, prefix: str, channel: str) -> str:
        values = self.params[name]
        return str(values[0]) if len(values) == 1 else f"{prefix}_{name}[{channel}]"

    def tables(self, prefix: str) -> list[str]:
        """C++ ROMs of the per-channel constants."""
        out = []
        for name, values in self.params.items():
            if len(values) > 1:
                out.append(f"static const int32_t {prefix}_{name}[{len(values)}] = {{{', '.join(map(str, values))}}};")
        return out

    def expr(self, value: str, channel: str, prefix: str) -> str:
        c = lambda name: self.constant(name, prefix, channel)  # noqa: E731
        if self.op == "requantize":
            q = self.node.attrs
            return (f"nnf::requantize<{self.out.cpp}, {self.product_bits()}>({value}, {c('x_zero_point')}, "
                    f"{c('multiplier')}, {c('shift')}, {c('zero_point')}, {q['qmin']}, {q['qmax']})")
        return f"nnf::{self.op}<{self.out.cpp}>({value}, {c('bound')})"

    def comment(self) -> str:
        if self.op == "requantize":
            q = self.node.attrs
            per = "per channel" if len(self.params["multiplier"]) > 1 else "per tensor"
            return f"requantize '{self.node.name}' ({per}), clamped to [{q['qmin']}, {q['qmax']}], into {self.out}"
        return f"{self.op} '{self.node.name}' with a constant"

    def resources(self, part: Part) -> Resources:
        """One lane: a multiplier, the rounding adder and the clamp comparators."""
        if self.op == "requantize":
            xz = self.params["x_zero_point"]
            centred = IntType.covering(self.in_type.lo - max(xz), self.in_type.hi - min(xz))
            return multiplier(centred.bits, 31, part) + adder(self.product_bits() - 20) + adder(2 * self.out.bits)
        return adder(self.in_type.bits)

    def partitioned(self, prefix: str, pe: int) -> list[tuple[str, int]]:
        return [(f"{prefix}_{n}", pe) for n, v in self.params.items() if len(v) > 1 and pe > 1]


def chain_expr(ops: list[Elementwise], value: str, channel: str, prefix: str) -> str:
    for i, op in enumerate(ops):
        value = op.expr(value, channel, f"{prefix}_{i}")
    return value


def chain_tables(ops: list[Elementwise], prefix: str) -> list[str]:
    return [line for i, op in enumerate(ops) for line in op.tables(f"{prefix}_{i}")]


def chain_pragmas(ops: list[Elementwise], prefix: str, pe: int) -> list[str]:
    return [f"#pragma HLS ARRAY_PARTITION variable={name} cyclic factor={parts}"
            for i, op in enumerate(ops) for name, parts in op.partitioned(f"{prefix}_{i}", pe)]


def chain_declarations(chains: list[tuple[list[Elementwise], str]], pe: int) -> str:
    """C++ lines declaring the per-channel constant ROMs of several chains, then their partitioning."""
    lines = [f"    {t}" for ops, prefix in chains for t in chain_tables(ops, prefix)]
    lines += [p for ops, prefix in chains for p in chain_pragmas(ops, prefix, pe)]
    return "".join(line + "\n" for line in lines)


def chain_partitioned(ops: list[Elementwise], prefix: str, pe: int) -> list[tuple[str, int]]:
    return [item for i, op in enumerate(ops) for item in op.partitioned(f"{prefix}_{i}", pe)]


def chain_resources(ops: list[Elementwise], part: Part) -> Resources:
    out = Resources()
    for op in ops:
        out = out + op.resources(part)
    return out

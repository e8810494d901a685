"""The mapping table: ONNX op type -> the function that builds its IR.

Each function takes a `OnnxNodeContext` (context.py) for one ONNX node and returns the Value(s) standing for
the node's outputs, in order (None for an optional output it cannot provide). Functions register
with `@onnx_op("Relu", ...)`; docs/onnx-ops.md is generated from this table.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

# control flow whose trip counts are data: never mapped (If is, when its condition folds)
CONTROL_FLOW = ("Loop", "Scan", "SequenceMap")


@dataclass(frozen=True)
class Mapping:
    op_type: str
    fn: Callable
    ir_ops: str          # what it becomes, for the docs
    note: str = ""       # limits (static inputs, unsupported attribute values), for the docs


MAPPINGS: dict[str, Mapping] = {}


def onnx_op(*op_types: str, ir: str, note: str = "") -> Callable[[Callable], Callable]:
    def wrap(fn: Callable) -> Callable:
        for op_type in op_types:
            if op_type in MAPPINGS:
                raise ValueError(f"ONNX op {op_type} mapped twice")
            MAPPINGS[op_type] = Mapping(op_type, fn, ir, note)
        return fn
    return wrap

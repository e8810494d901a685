"""The lowering table, its registration decorator and the helpers several op families share."""
from __future__ import annotations

from typing import Callable

from backends.onnx.builder import OnnxBuilder
from compiler.ir import Node

Lowering = Callable[[OnnxBuilder, Node], None]
LOWERINGS: dict[str, Lowering] = {}


def lowering(*ops: str) -> Callable[[Lowering], Lowering]:
    def wrap(fn: Lowering) -> Lowering:
        for op in ops:
            LOWERINGS[op] = fn
        return fn
    return wrap


def one_to_one(op_type: str) -> Lowering:
    """A lowering to one ONNX node of `op_type` that takes the IR node's inputs as they are."""
    def lower(b: OnnxBuilder, node: Node) -> None:
        b.emit(op_type, b.inputs(node), [b.y(node)])
    lower.__name__ = f"lower_{op_type.lower()}"
    return lower


def per_spatial_dim(values, rank: int) -> list[int]:
    """A per-spatial-dim list from torch's int-or-tuple convention (a 1-tuple broadcasts)."""
    values = list(values)
    return values * rank if len(values) == 1 else values


def spatial_rank(b: OnnxBuilder, node: Node, attr: str) -> int:
    """Number of spatial dims; ONNX convolutions and pools need the batch dim torch can omit."""
    k = len(node.attrs[attr])
    if len(node.inputs[0].shape) != k + 2:
        raise b.error(f"{node.op} on an unbatched input of shape {list(node.inputs[0].shape)}",
                      hint="reshape the input to add a batch dimension of 1")
    return k

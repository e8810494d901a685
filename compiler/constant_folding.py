"""The one constant folder: an op applied to constants is computed ahead of time.

The fold-constants pass asks it about every node of a graph, the ONNX frontend about every node
it is about to emit (so exporters' Shape -> Gather -> Concat -> Reshape arithmetic becomes plain
constants). One rule decides for both:

* what folds: every present input holds data, the op allows it (`OpDef.foldable`: fake_quant
  carries a number format and stays a node), and it is small: no result over `max_elements`
  elements and no more than `max_macs` multiply-accumulates, so a hostile or huge model cannot
  make the compiler allocate or compute without bound;
* parameter or buffer: a result computed from at least one parameter is a parameter when it is
  floating point (a transposed, reshaped, sliced, cast or scaled weight is still a weight);
  everything else is a non-trainable constant;
* memory: a result is contiguous and shares no storage with its inputs (the user's weights).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from compiler.errors import IRError
from compiler import memory
from compiler.ir import Graph, TensorType, Value
from compiler.ops import get_op


@dataclass(frozen=True)
class FoldLimits:
    """The most one folded op may produce and compute."""

    max_elements: int = 1 << 24   # per result: 64 MiB of float32
    max_macs: int = 10**8


def refusal(op: str, inputs: Sequence[Value | None], attrs: dict, out_types: Sequence[TensorType],
            limits: FoldLimits = FoldLimits()) -> str | None:
    """Why `op(inputs)` is not computed ahead of time ("not-constant", "not-foldable",
    "too-large"), or None when it is."""
    if any(v is not None and v.data is None for v in inputs) or all(v is None for v in inputs):
        return "not-constant"
    opdef = get_op(op)
    if not opdef.foldable:
        return "not-foldable"
    if any(t.numel > limits.max_elements for t in out_types) or \
            sum(memory.tensor_bytes(t.shape, t.dtype) for t in out_types) > memory.limit() or \
            opdef.macs([None if v is None else v.type for v in inputs], list(out_types), attrs) > limits.max_macs:
        return "too-large"
    return None


def fold(graph: Graph, op: str, inputs: Sequence[Value | None], attrs: dict, out_types: Sequence[TensorType],
         names: Sequence[str], limits: FoldLimits = FoldLimits()) -> list[Value] | str:
    """`op(inputs)` computed now, as new constants named `names` (one per result), or the reason
    it stays a node (see `refusal`). `attrs` must be complete."""
    reason = refusal(op, inputs, attrs, out_types, limits)
    if reason is not None:
        return reason
    present = [v for v in inputs if v is not None]
    with torch.no_grad():
        results = get_op(op).run([None if v is None else v.data for v in inputs], attrs)
    from_param = any(v.is_param for v in present)
    storages = {v.data.untyped_storage().data_ptr() for v in present}
    folded = []
    for name, expected, result in zip(names, out_types, results, strict=True):
        if TensorType.of(result) != expected:
            raise IRError(f"folding {op} gave {list(result.shape)} {result.dtype}, but its result is "
                          f"typed {list(expected.shape)} {expected.dtype}")
        result = _owned(result.detach(), storages)
        folded.append(graph.add_weight(name, result, is_param=from_param and result.is_floating_point()))
    return folded


def _owned(result: torch.Tensor, storages: set[int]) -> torch.Tensor:
    """The result as a contiguous tensor that shares no storage with any input."""
    if result.untyped_storage().data_ptr() in storages:
        return result.clone(memory_format=torch.contiguous_format)
    return result.contiguous()

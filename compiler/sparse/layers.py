"""Which IR layers the sparse kernel runs, and the packed, callable form of one.

The kernel runs 1-d and 2-d convolutions (any stride, padding, dilation and groups), linear
layers, and matmuls by a constant 2-d matrix, in float32. `kernel_layer` packs a node's weight
once; the resulting `SparseLayer` is called with the layer's input, and `call` names the runtime
function and its arguments for code generation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from compiler.ir import Node
from compiler.ops import get_op
from compiler.sparse import runtime
from compiler.sparse.packing import ConvGeometry, PackedWeight, pack


def unsupported(node: Node) -> str | None:
    """Why the kernel cannot run `node` (None when it can)."""
    layout = get_op(node.op).layout
    if node.op not in ("conv", "linear", "matmul") or layout is None:
        return f"the sparse kernel has no {node.op}"
    weight = layout.weight_value(node)
    if weight is None or weight.data is None:
        return "its weight is not a constant"
    if weight.dtype != torch.float32 or node.outputs[0].dtype != torch.float32:
        return "the sparse kernel computes float32 only"
    if node.op == "conv" and len(node.attrs["stride"]) > 2:
        return "the sparse kernel has 1-d and 2-d convolutions only"
    if node.op == "conv" and node.inputs[0].rank == len(node.attrs["stride"]):
        return "the input has no channel axis"
    if node.op == "matmul" and weight.rank != 2:
        return "a batched matmul weight"
    return None


def conv_geometry(node: Node) -> ConvGeometry:
    a, w, x, y = node.attrs, node.inputs[1].shape, node.inputs[0].shape, node.outputs[0].shape
    spatial = len(a["stride"])
    batch = x[0] if len(x) == spatial + 2 else 1
    if spatial == 1:  # a conv1d is a conv2d of height 1
        return ConvGeometry(x[-2], 1, x[-1], y[-2], 1, y[-1], (1, a["stride"][0]), (0, a["padding"][0]),
                            (1, a["dilation"][0]), (1, w[2]), a["groups"], batch)
    return ConvGeometry(x[-3], x[-2], x[-1], y[-3], y[-2], y[-1], tuple(a["stride"]), tuple(a["padding"]),
                        tuple(a["dilation"]), (w[2], w[3]), a["groups"], batch)


@dataclass(frozen=True)
class SparseLayer:
    """A packed layer: `call(x)` runs it; `function` and `static` are what code generation emits
    (`function(x, block_start, offsets, values, bias, *static)`)."""

    packed: PackedWeight
    function: Callable[..., torch.Tensor]
    static: tuple

    @property
    def tensors(self) -> dict[str, torch.Tensor]:
        p = self.packed
        return {"block_start": p.block_start, "offsets": p.offsets, "values": p.values, "bias": p.bias}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.function(x, *self.tensors.values(), *self.static)


def kernel_layer(node: Node, weight: torch.Tensor, bias: torch.Tensor | None, lanes: int) -> SparseLayer:
    """`node` (which `unsupported` accepts) with `weight` and `bias`, packed in groups of `lanes`."""
    matrices = get_op(node.op).layout.matrices(weight, node)
    if node.op == "conv":
        geometry = conv_geometry(node)
        packed = pack(matrices, lanes, geometry.column_offsets(), bias)
        return SparseLayer(packed, runtime.sparse_conv,
                           (geometry.shape_vector(), lanes, len(node.attrs["stride"])))
    packed = pack(matrices, lanes, np.arange(matrices.shape[-1]), bias)
    return SparseLayer(packed, runtime.sparse_matmul, (matrices.shape[2], matrices.shape[1], lanes))

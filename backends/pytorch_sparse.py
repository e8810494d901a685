"""Sparse layers in the PyTorch backend: calls into the SIMD-group sparse kernel.

With `target pytorch{sparse-kernel=true}`, every conv/linear/matmul whose weight carries a
`simd` `SparsityAnnotation` (and which the kernel runs: `compiler.sparse.layers.unsupported`)
becomes one call to `compiler.sparse.runtime`, with the weight packed once, at lowering, into
buffers: the nonzero groups, their input offsets, and the bias. Other layers stay torch calls.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.fx as fx

from compiler.ir import Node, Value
from compiler.ops import get_op
from compiler.sparse.annotation import SparsityAnnotation
from compiler.sparse.build import load_kernel
from compiler.sparse.layers import kernel_layer, unsupported


def sparse_call(node: Node, lookup: Callable[[Value], fx.Node],
                add_buffer: Callable[[str, torch.Tensor], fx.Node]) -> tuple[Callable, tuple] | None:
    """(function, args) running `node` through the sparse kernel, or None to keep torch's call."""
    layout = get_op(node.op).layout
    weight = layout.weight_value(node) if layout is not None else None
    note = weight.annotation(SparsityAnnotation) if weight is not None else None
    if note is None or note.pattern != "simd" or unsupported(node) is not None:
        return None
    bias = layout.bias_value(node)
    if bias is not None and bias.data is None:
        return None  # a computed bias: the kernel takes constants only
    load_kernel()  # built (or found in the cache) now: a missing compiler fails the lowering, not a run
    layer = kernel_layer(node, weight.data, bias.data if bias is not None else None, note.lanes)
    buffers = [add_buffer(f"{weight.name}.sparse.{part}", t) for part, t in layer.tensors.items()]
    return layer.function, (lookup(node.inputs[0]), *buffers, *layer.static)

"""Normalization layers: batch_norm, layer_norm, group_norm."""
from __future__ import annotations

import torch

from backends.onnx.builder import OnnxBuilder
from backends.onnx.lowering.registry import lowering
from compiler.ir import Node


def _or_fill(b: OnnxBuilder, node: Node, i: int, shape: tuple[int, ...], fill: float, tag: str) -> str:
    name = b.x(node, i)
    return name or b.tensor(torch.full(shape, fill, dtype=node.inputs[0].dtype), tag)


@lowering("batch_norm")
def batch_norm(b: OnnxBuilder, node: Node) -> None:
    channels = (node.inputs[0].shape[1],)
    b.emit("BatchNormalization", [b.x(node), _or_fill(b, node, 3, channels, 1.0, "scale"),
                                  _or_fill(b, node, 4, channels, 0.0, "bias"),
                                  b.x(node, 1), b.x(node, 2)],
           [b.y(node)], epsilon=node.attrs["eps"])


@lowering("layer_norm")
def layer_norm(b: OnnxBuilder, node: Node) -> None:
    shape = tuple(node.attrs["normalized_shape"])
    ins = [b.x(node), _or_fill(b, node, 1, shape, 1.0, "scale")] + ([b.x(node, 2)] if b.x(node, 2) else [])
    b.emit("LayerNormalization", ins, [b.y(node)], axis=-len(shape), epsilon=node.attrs["eps"])


@lowering("group_norm")
def group_norm(b: OnnxBuilder, node: Node) -> None:
    """Exact decomposition (GroupNormalization's scale/bias semantics changed at opset 21)."""
    x, groups = node.inputs[0], node.attrs["num_groups"]
    n, c = x.shape[0], x.shape[1]
    grouped = b.emit("Reshape", [b.x(node), b.ints([n, groups, -1], "grouped")])
    mean = b.reduce("ReduceMean", grouped, [2], keepdims=True)
    centered = b.emit("Sub", [grouped, mean])
    var = b.reduce("ReduceMean", b.emit("Mul", [centered, centered]), [2], keepdims=True)
    std = b.emit("Sqrt", [b.emit("Add", [var, b.scalar(node.attrs["eps"], x.dtype, "eps")])])
    normed = b.emit("Reshape", [b.emit("Div", [centered, std]), b.ints(x.shape, "shape")])
    per_channel = (c,) + (1,) * (len(x.shape) - 2)
    weight, bias = (node.inputs[i] if i < len(node.inputs) else None for i in (1, 2))
    steps = [("Mul", weight, "scale"), ("Add", bias, "bias")]
    steps = [(op, v, tag) for op, v, tag in steps if v is not None]
    if not steps:
        b.emit("Identity", [normed], [b.y(node)])
    for k, (op, v, tag) in enumerate(steps):
        out = [b.y(node)] if k == len(steps) - 1 else None
        normed = b.emit(op, [normed, b.reshaped(v, per_channel, tag)], out)

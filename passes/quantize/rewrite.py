"""Inserting `fake_quant` nodes with their constants and their QuantAnnotation."""
from __future__ import annotations

import torch

from compiler.ir import Graph, Node, Value
from compiler.quant import QuantAnnotation
from compiler.quant.formats import FloatFormat, Format


def insert_fake_quant(graph: Graph, value: Value, fmt: Format, scale: torch.Tensor, *, stem: str,
                      role: str, before: Node, zero_point: torch.Tensor | None = None,
                      tensor_scale: torch.Tensor | None = None, axis: int | None = None,
                      block_size: int = 0, preshift: bool = False) -> Value:
    """A fake_quant of `value` placed before `before`; returns its (annotated) output."""
    if axis is not None:
        axis %= value.rank
    scale = scale.detach().float().contiguous().clone()
    if axis is None:
        scale = scale.reshape(())
    s = graph.add_constant(f"{stem}.scale", scale)
    inputs: list[Value | None] = [value, s]
    z = t = None
    if zero_point is not None:
        z = graph.add_constant(f"{stem}.zero_point", zero_point.detach().float().reshape(scale.shape).clone())
    if tensor_scale is not None:
        t = graph.add_constant(f"{stem}.tensor_scale", tensor_scale.detach().float().reshape(()).clone())
    inputs += [z, t] if t is not None else [z] if z is not None else []
    node = graph.create_node("fake_quant", inputs, {"format": fmt.name, "axis": axis, "block_size": block_size},
                             name=f"{stem}.quant", before=before, source=before.source)
    bias = fmt.bias_of(float(scale)) if isinstance(fmt, FloatFormat) and axis is None else None
    granularity = "tensor" if axis is None else "group" if block_size else "channel"
    node.output.annotate(QuantAnnotation(
        format=fmt.name, granularity=granularity, axis=axis, block_size=block_size, scale=s.name,
        zero_point=z.name if z is not None else None, tensor_scale=t.name if t is not None else None,
        role=role, exponent_bias=round(bias, 6) if bias is not None else None, preshift=preshift))
    return node.output

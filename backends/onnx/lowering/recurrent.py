"""ONNX lowerings of `lstm` and `gru`: ONNX LSTM / GRU nodes with the gates reordered.

The IR keeps nn.LSTM's gate order (i, f, g, o) and nn.GRU's (r, z, n); ONNX wants (i, o, f, c)
and (z, r, h). Constant weights are stored reordered; run-time ones go through a Gather. The two
biases become ONNX's one B = [Wb, Rb]; sequence lengths are cast to int32.
"""
from __future__ import annotations

import torch

from backends.onnx.builder import OnnxBuilder
from backends.onnx.lowering.registry import lowering
from compiler.ir import Node, Value

# ONNX gate -> IR gate block, per op
_ORDER = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2)}


def _rows(order: tuple[int, ...], hidden: int) -> list[int]:
    return [g * hidden + k for g in order for k in range(hidden)]


def _reordered(b: OnnxBuilder, v: Value, rows: list[int], tag: str) -> str:
    if v.data is not None:
        return b.tensor(v.data.detach()[:, rows], tag)
    return b.emit("Gather", [b.value(v), b.ints(rows, "rows")], axis=1)


def _bias(b: OnnxBuilder, node: Node, rows: list[int]) -> str:
    """ONNX's B [D, 2 * G*H]: both biases reordered, a missing one as zeros."""
    b_ih, b_hh = (node.inputs[i] if i < len(node.inputs) else None for i in (3, 4))
    if b_ih is None and b_hh is None:
        return ""
    w_hh = node.inputs[2]
    zeros = torch.zeros(w_hh.shape[0], w_hh.shape[1], dtype=w_hh.dtype)
    parts = [_reordered(b, v, rows, tag) if v is not None else b.tensor(zeros, f"{tag}_zero")
             for v, tag in ((b_ih, "wb"), (b_hh, "rb"))]
    return b.emit("Concat", parts, axis=1)


def _lengths(b: OnnxBuilder, node: Node, index: int) -> str:
    v = node.inputs[index] if index < len(node.inputs) else None
    return "" if v is None else b.cast(b.value(v), v.dtype, torch.int32)


@lowering("lstm", "gru")
def recurrent(b: OnnxBuilder, node: Node) -> None:
    w_hh = node.inputs[2]
    hidden = w_hh.shape[2]
    rows = _rows(_ORDER[node.op], hidden)
    states = (5, 6) if node.op == "lstm" else (5,)
    ins = [b.x(node), _reordered(b, node.inputs[1], rows, "w"), _reordered(b, w_hh, rows, "r"),
           _bias(b, node, rows), _lengths(b, node, states[-1] + 1), *(b.x(node, i) for i in states)]
    while ins and not ins[-1]:
        ins.pop()
    attrs = {"hidden_size": hidden, "direction": node.attrs["direction"]}
    if node.op == "gru":
        attrs["linear_before_reset"] = int(node.attrs["linear_before_reset"])
    b.emit(node.op.upper(), ins, [v.name for v in node.outputs], **attrs)

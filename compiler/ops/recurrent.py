"""Recurrent layers: `lstm` and `gru` over a whole sequence, one or two directions.

    y, h_n, c_n = lstm(x, w_ih, w_hh, b_ih?, b_hh?, h0?, c0?, lengths?) {direction="forward"}
    y, h_n = gru(x, w_ih, w_hh, b_ih?, b_hh?, h0?, lengths?) {direction, linear_before_reset=True}

One layer; stacked layers are one node each. Weights keep nn.LSTM / nn.GRU's gate order with a
leading direction dim; x is sequence first and y is ONNX's [T, D, B, H] (recurrent_kernels.py
has the semantics, sequence lengths included).
"""
from __future__ import annotations

import torch

from compiler.ir import TensorType
from compiler.ops import recurrent_kernels as kernels
from compiler.ops.registry import Attr, OpDef, raise_shape, register_op

DIRECTIONS = ("forward", "reverse", "bidirectional")


def _opt(items: list, i: int):
    return items[i] if i < len(items) else None


def _infer(op: str, gates: int, state_inputs: int):
    def infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
        x, w_ih, w_hh = ins[0], ins[1], ins[2]
        if x.rank != 3 or w_ih.rank != 3 or w_hh.rank != 3:
            raise_shape(op, ins, "x must be [T, B, I] and the weights [D, G*H, I] / [D, G*H, H]")
        seq, batch, features = x.shape
        dirs, hidden = w_hh.shape[0], w_hh.shape[2]
        if dirs != (2 if a["direction"] == "bidirectional" else 1):
            raise_shape(op, ins, f"direction '{a['direction']}' needs {2 if dirs == 1 else 1} weight direction(s)")
        if w_ih.shape != (dirs, gates * hidden, features) or w_hh.shape != (dirs, gates * hidden, hidden):
            raise_shape(op, ins, f"weights must be [{dirs}, {gates}*H, I] and [{dirs}, {gates}*H, H]")
        for b in (_opt(ins, 3), _opt(ins, 4)):
            if b is not None and b.shape != (dirs, gates * hidden):
                raise_shape(op, ins, f"biases must be [{dirs}, {gates * hidden}]")
        for s in (_opt(ins, 5 + k) for k in range(state_inputs)):
            if s is not None and s.shape != (dirs, batch, hidden):
                raise_shape(op, ins, f"initial states must be [{dirs}, {batch}, {hidden}]")
        lengths = _opt(ins, 5 + state_inputs)
        if lengths is not None and (lengths.shape != (batch,) or lengths.dtype not in (torch.int32, torch.int64)):
            raise_shape(op, ins, f"lengths must be {batch} integers")
        if not x.dtype.is_floating_point or any(t is not None and t.dtype.is_floating_point and t.dtype != x.dtype
                                                for t in ins):
            raise_shape(op, ins, "x, weights and states must share one floating-point dtype")
        state = TensorType((dirs, batch, hidden), x.dtype)
        return [TensorType((seq, dirs, batch, hidden), x.dtype)] + [state] * state_inputs
    return infer


def _macs(gates: int):
    def macs(ins: list[TensorType | None], outs: list[TensorType], a: dict) -> int:
        (seq, batch, features), (dirs, rows, hidden) = ins[0].shape, ins[2].shape
        return seq * batch * dirs * rows * (features + hidden)
    return macs


register_op(OpDef(
    name="lstm", inputs=("x", "w_ih", "w_hh", "b_ih?", "b_hh?", "h0?", "c0?", "lengths?"), category="nn",
    attrs={"direction": Attr("str", "forward", choices=DIRECTIONS)},
    torch_call=lambda i, a: (kernels.lstm, tuple(i), {"direction": a["direction"]}),
    infer_fn=_infer("lstm", 4, 2), macs_fn=_macs(4), num_outputs=lambda a: 3,
    doc="One LSTM layer over a sequence: x [T, B, I], weights [D, 4H, I] / [D, 4H, H] in nn.LSTM's gate order "
        "(i, f, g, o), optional biases [D, 4H], initial states [D, B, H] and ONNX sequence lengths [B]; "
        "gives y [T, D, B, H], h_n and c_n [D, B, H]."))

register_op(OpDef(
    name="gru", inputs=("x", "w_ih", "w_hh", "b_ih?", "b_hh?", "h0?", "lengths?"), category="nn",
    attrs={"direction": Attr("str", "forward", choices=DIRECTIONS),
           "linear_before_reset": Attr("bool", True, doc="torch's form; False is ONNX's default")},
    torch_call=lambda i, a: (kernels.gru, tuple(i), {"direction": a["direction"],
                                                     "linear_before_reset": a["linear_before_reset"]}),
    infer_fn=_infer("gru", 3, 1), macs_fn=_macs(3), num_outputs=lambda a: 2,
    doc="One GRU layer: like lstm with gates (r, z, n) as in nn.GRU and no cell state; y [T, D, B, H], "
        "h_n [D, B, H]. linear_before_reset=False applies the reset gate before the hidden projection (ONNX's "
        "default)."))

"""ONNX LSTM and GRU -> `lstm` / `gru` (one node each, gates reordered to nn.LSTM / nn.GRU's).

ONNX orders LSTM gates (i, o, f, c) and GRU gates (z, r, h); the IR keeps torch's (i, f, g, o)
and (r, z, n), so W, R and B are gathered into that order (folded for constant weights). `layout`
1 (batch first) becomes permutes around the node; sequence lengths that are all T are dropped.
Activations other than the defaults, `clip`, `input_forget` and peepholes are refused.
"""
from __future__ import annotations

import torch

from compiler.ir import Value
from frontends.onnx.context import OnnxNodeContext
from frontends.onnx.table import onnx_op

_GATES = {"LSTM": (0, 2, 3, 1), "GRU": (1, 0, 2)}           # IR gate -> ONNX gate block
_DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}


def _check_unsupported(cx: OnnxNodeContext, dirs: int) -> None:
    acts = cx.attr("activations", "strs", None) if cx.has_attr("activations") else None
    if acts is not None and [a.lower() for a in acts] != [a.lower() for a in _DEFAULT_ACTIVATIONS[cx.op_type] * dirs]:
        raise cx.unsupported(f"activations {acts} (only the defaults)")
    if cx.has_attr("clip"):
        raise cx.unsupported("clip")
    if cx.attr("input_forget", "int", 0):
        raise cx.unsupported("input_forget=1")
    peepholes = cx.input(7) if cx.op_type == "LSTM" else None
    if peepholes is not None and (peepholes.data is None or bool(peepholes.data.any())):
        raise cx.unsupported("peephole weights (P)")


def _gates(cx: OnnxNodeContext, v: Value, hidden: int, what: str) -> Value:
    rows = [g * hidden + k for g in _GATES[cx.op_type] for k in range(hidden)]
    return cx.emit("gather", [v, cx.constant(torch.tensor(rows), f"{what}_rows")], {"dim": 1}, suffix=what)


def _lengths(cx: OnnxNodeContext, index: int, seq: int) -> Value | None:
    lengths = cx.input(index)
    if lengths is None or (lengths.data is not None and bool((lengths.data == seq).all())):
        return None
    return lengths


@onnx_op("LSTM", "GRU", ir="lstm / gru (+ permutes for layout=1)",
         note="both directions, sequence_lens, initial states, GRU linear_before_reset; default activations, "
              "no clip, input_forget or peepholes")
def recurrent(cx: OnnxNodeContext):
    x, w, r, b = cx.required(0), cx.required(1, "W"), cx.required(2, "R"), cx.input(3)
    batch_first = cx.attr("layout", "int", 0) == 1
    direction = cx.attr("direction", "str", "forward")
    dirs, hidden = w.shape[0], r.shape[-1]
    if direction not in ("forward", "reverse", "bidirectional") or dirs != (2 if direction == "bidirectional" else 1):
        raise cx.error(f"direction '{direction}' does not fit W of shape {list(w.shape)}")
    if cx.attr("hidden_size", "int", hidden) != hidden:
        raise cx.error(f"hidden_size {cx.attr('hidden_size', 'int')} does not match R {list(r.shape)}")
    _check_unsupported(cx, dirs)
    gates = len(_GATES[cx.op_type])
    if batch_first:
        x = cx.emit("permute", [x], {"dims": (1, 0, 2)}, suffix="seq_first")
    b_ih = b_hh = None
    if b is not None:
        b_ih, b_hh = cx.emit_multi("split", [b], {"sizes": (gates * hidden,) * 2, "dim": 1}, suffix="bias")
        b_ih, b_hh = _gates(cx, b_ih, hidden, "b_ih"), _gates(cx, b_hh, hidden, "b_hh")
    states = [cx.input(i) for i in ((5, 6) if cx.op_type == "LSTM" else (5,))]
    if batch_first:
        states = [s if s is None else cx.emit("permute", [s], {"dims": (1, 0, 2)}, suffix=f"state{i}")
                  for i, s in enumerate(states)]
    attrs = {"direction": direction}
    if cx.op_type == "GRU":
        attrs["linear_before_reset"] = bool(cx.attr("linear_before_reset", "int", 0))
    inputs = [x, _gates(cx, w, hidden, "w_ih"), _gates(cx, r, hidden, "w_hh"), b_ih, b_hh, *states,
              _lengths(cx, 4, x.shape[0])]
    while inputs[-1] is None:
        inputs.pop()
    results = cx.emit_multi(cx.op_type.lower(), inputs, attrs, suffix="seq_first" if batch_first else "")
    if not batch_first:
        return results
    y = cx.emit("permute", [results[0]], {"dims": (2, 0, 1, 3)})
    return [y] + [cx.emit("permute", [s], {"dims": (1, 0, 2)}, suffix=f"out{i}") for i, s in enumerate(results[1:])]

"""nn.LSTM and nn.GRU -> one `lstm` / `gru` node per layer.

Per layer, the direction weights are stacked into the IR's [D, G*H, ...] layout (a view for one
direction, a copy for two); layers chain through a permute + reshape of y [T, D, B, H] into the next layer's
[T, B, D*H]. batch_first and unbatched inputs become reshapes/permutes around the stack, and
the results come back as nn.LSTM / nn.GRU return them: (output, (h_n, c_n)) / (output, h_n).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from compiler.ir import Value
from compiler.ops import get_op
from frontends.torch_fx.context import FxNodeContext


def _stacked(cx: FxNodeContext, m: nn.Module, name: str, layer: int) -> Value | None:
    suffixes = ["", "_reverse"] if m.bidirectional else [""]
    tensors = [getattr(m, f"{name}_l{layer}{s}", None) for s in suffixes]
    if tensors[0] is None:
        return None
    stacked = tensors[0].detach().unsqueeze(0) if len(tensors) == 1 else torch.stack([t.detach() for t in tensors])
    return cx.graph.add_weight(f"{cx.node.target}.{name}_l{layer}", stacked, is_param=True)


def _check(cx: FxNodeContext, m: nn.Module) -> None:
    if getattr(m, "proj_size", 0):
        raise cx.error(f"{cx.what()}: proj_size={m.proj_size} is not supported")
    if m.training and m.dropout and m.num_layers > 1:
        raise cx.error(f"{cx.what()} is in training mode (dropout between layers)",
                       hint="call model.eval() before importing")


def _layer_states(cx: FxNodeContext, state: Value | None, layer: int, dirs: int, what: str) -> Value | None:
    if state is None:
        return None
    return cx.emit("slice", [state], {"dim": 0, "start": layer * dirs, "end": (layer + 1) * dirs},
                   suffix=f"{what}_l{layer}")


def _run(cx: FxNodeContext, m: nn.Module, x: Any, states: list[Value | None]) -> tuple[Value, list[Value]]:
    """The stacked layers on a [T, B, I] input; (output [T, B, D*H], final states [L*D, B, H] each)."""
    op = "lstm" if isinstance(m, nn.LSTM) else "gru"
    dirs = 2 if m.bidirectional else 1
    attrs = {"direction": "bidirectional" if m.bidirectional else "forward"}
    finals: list[list[Value]] = [[] for _ in states]
    for layer in range(m.num_layers):
        inputs = [x, _stacked(cx, m, "weight_ih", layer), _stacked(cx, m, "weight_hh", layer),
                  _stacked(cx, m, "bias_ih", layer), _stacked(cx, m, "bias_hh", layer),
                  *(_layer_states(cx, s, layer, dirs, f"state{k}") for k, s in enumerate(states))]
        while inputs[-1] is None:
            inputs.pop()
        types = get_op(op).infer([None if v is None else v.type for v in inputs], get_op(op).complete_attrs(attrs))
        y, *layer_finals = cx.emit_multi(op, inputs, attrs, types, suffix=f"l{layer}")
        for acc, s in zip(finals, layer_finals):
            acc.append(s)
        seq, _, batch, hidden = y.shape
        moved = cx.emit("permute", [y], {"dims": (0, 2, 1, 3)}, suffix=f"l{layer}_seq_batch")
        x = cx.reshape(moved, (seq, batch, dirs * hidden), suffix=f"l{layer}_out")
    joined = [s[0] if len(s) == 1 else cx.emit("concat", s, {"dim": 0}, suffix=f"final{k}")
              for k, s in enumerate(finals)]
    return x, joined


def recurrent(cx: FxNodeContext, m: nn.Module, x: Any, hx: Any = None) -> Any:
    _check(cx, m)
    x = cx.tensor(x)
    lstm = isinstance(m, nn.LSTM)
    states = list(hx) if lstm and hx is not None else [hx] if hx is not None else []
    states = [cx.tensor(s, "hx") for s in states] + [None] * ((2 if lstm else 1) - len(states))
    unbatched = x.rank == 2
    if unbatched:
        x = cx.reshape(x, (x.shape[0], 1, x.shape[1]), suffix="batched")
        states = [s if s is None else cx.reshape(s, (s.shape[0], 1, s.shape[1]), suffix=f"hx{k}_batched")
                  for k, s in enumerate(states)]
    elif m.batch_first:
        x = cx.emit("permute", [x], {"dims": (1, 0, 2)}, suffix="seq_first")
    y, finals = _run(cx, m, x, states)
    if unbatched:
        y = cx.reshape(y, (y.shape[0], y.shape[2]), suffix="output")
        finals = [cx.reshape(s, (s.shape[0], s.shape[2]), suffix=f"final{k}_unbatched") for k, s in enumerate(finals)]
    elif m.batch_first:
        y = cx.emit("permute", [y], {"dims": (1, 0, 2)}, suffix="output")
    return (y, tuple(finals)) if lstm else (y, finals[0])

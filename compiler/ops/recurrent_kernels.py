"""LSTM and GRU over a whole sequence, in plain torch, with ONNX's semantics.

Torch only, no nnforge imports: the interpreter calls these through the op registry (`lstm`,
`gru`), the PyTorch backend emits the same calls, and a generated standalone `model.py` carries
this module's source, so all three compute the same numbers.

Layouts: x is [T, B, I] (sequence first); weights are per direction, gates in torch's order
(LSTM i, f, g, o; GRU r, z, n) as in nn.LSTM / nn.GRU: w_ih [D, G*H, I], w_hh [D, G*H, H], biases
[D, G*H]. Results follow ONNX: y [T, D, B, H], final states [D, B, H]. `lengths` [B] are ONNX's
sequence_lens: batch entry b only runs its first lengths[b] steps (the reverse direction starts at
its own last step), its outputs past them are zero and its final state is the one at its last step.
"""
from __future__ import annotations

import torch


def _steps(seq_len: int, reverse: bool):
    return range(seq_len - 1, -1, -1) if reverse else range(seq_len)


def _mask(lengths: torch.Tensor | None, t: int) -> torch.Tensor | None:
    return None if lengths is None else (lengths > t).unsqueeze(-1)


def _directions(direction: str, count: int) -> list[bool]:
    """Whether each direction runs backwards in time."""
    if direction == "bidirectional":
        return [False, True]
    return [direction == "reverse"] * count


def _input_gates(x: torch.Tensor, w_ih: torch.Tensor, b_ih: torch.Tensor | None) -> torch.Tensor:
    gates = torch.matmul(x, w_ih.t())
    return gates if b_ih is None else gates + b_ih


def lstm(x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor | None = None,
         b_hh: torch.Tensor | None = None, h0: torch.Tensor | None = None, c0: torch.Tensor | None = None,
         lengths: torch.Tensor | None = None, *, direction: str = "forward"):
    """(y [T, D, B, H], h_n [D, B, H], c_n [D, B, H])."""
    seq_len, batch = x.shape[0], x.shape[1]
    hidden = w_hh.shape[-1]
    ys, hs, cs = [], [], []
    for d, reverse in enumerate(_directions(direction, w_ih.shape[0])):
        h = h0[d] if h0 is not None else x.new_zeros(batch, hidden)
        c = c0[d] if c0 is not None else x.new_zeros(batch, hidden)
        xg = _input_gates(x, w_ih[d], None if b_ih is None else b_ih[d])
        out = [x.new_zeros(batch, hidden)] * seq_len
        for t in _steps(seq_len, reverse):
            gates = xg[t] + torch.matmul(h, w_hh[d].t())
            if b_hh is not None:
                gates = gates + b_hh[d]
            i, f, g, o = gates.chunk(4, dim=-1)
            c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h_new = torch.sigmoid(o) * torch.tanh(c_new)
            live = _mask(lengths, t)
            if live is None:
                h, c, out[t] = h_new, c_new, h_new
            else:
                h, c = torch.where(live, h_new, h), torch.where(live, c_new, c)
                out[t] = torch.where(live, h_new, torch.zeros_like(h_new))
        ys.append(torch.stack(out))
        hs.append(h)
        cs.append(c)
    return torch.stack(ys, dim=1), torch.stack(hs), torch.stack(cs)


def gru(x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor | None = None,
        b_hh: torch.Tensor | None = None, h0: torch.Tensor | None = None, lengths: torch.Tensor | None = None,
        *, direction: str = "forward", linear_before_reset: bool = True):
    """(y [T, D, B, H], h_n [D, B, H]). `linear_before_reset` is torch's form, r * (W_hn h + b_hn);
    False is ONNX's default, W_hn (r * h) + b_hn."""
    seq_len, batch = x.shape[0], x.shape[1]
    hidden = w_hh.shape[-1]
    ys, hs = [], []
    for d, reverse in enumerate(_directions(direction, w_ih.shape[0])):
        h = h0[d] if h0 is not None else x.new_zeros(batch, hidden)
        xg = _input_gates(x, w_ih[d], None if b_ih is None else b_ih[d])
        w_hr, w_hz, w_hn = w_hh[d].chunk(3, dim=0)
        b_hr, b_hz, b_hn = b_hh[d].chunk(3) if b_hh is not None else (None, None, None)
        out = [x.new_zeros(batch, hidden)] * seq_len
        for t in _steps(seq_len, reverse):
            x_r, x_z, x_n = xg[t].chunk(3, dim=-1)
            h_r, h_z = torch.matmul(h, w_hr.t()), torch.matmul(h, w_hz.t())
            if b_hh is not None:
                h_r, h_z = h_r + b_hr, h_z + b_hz
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            if linear_before_reset:
                h_n = torch.matmul(h, w_hn.t())
                h_n = r * (h_n if b_hn is None else h_n + b_hn)
            else:
                h_n = torch.matmul(r * h, w_hn.t())
                h_n = h_n if b_hn is None else h_n + b_hn
            h_new = (1 - z) * torch.tanh(x_n + h_n) + z * h
            live = _mask(lengths, t)
            if live is None:
                h, out[t] = h_new, h_new
            else:
                h = torch.where(live, h_new, h)
                out[t] = torch.where(live, h_new, torch.zeros_like(h_new))
        ys.append(torch.stack(out))
        hs.append(h)
    return torch.stack(ys, dim=1), torch.stack(hs)

"""LLM-FP4 search (arXiv 2310.16836): per layer, the FP format and a real-valued exponent bias.

For an ExMy format the exponent bias b and the largest representable value are one parameter:
maxval = 2^(2^E - 1 - b) (2 - 2^-M), i.e. scale = 2^(b0 - b). Starting from the min-max
initialisation (maxval = max |x|), `candidates` (100) values between 0.01 and 1.2 times the
initial maxval are tried, which is a real-valued bias search. The objective is the layer's output
error on calibration inputs: || layer(Q(x), Q(W)) - layer(x, W) ||^2.

Weights and activations alternate for `rounds` rounds. Weight scales are chosen per output
channel where the granularity is per channel (each channel's output error only depends on its
own row); activation scales per tensor. With `search=fp-format` every E/M split of the same
width (fp4: E1M2, E2M1, E3M0) that the compile targets can carry is tried per layer, for weights
and activations separately (an ONNX target holds E2M1, E4M3 and E5M2 only).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from compiler.ir import Node
from compiler.ops import get_op
from compiler.quant.formats import FloatFormat, Format, IntFormat, fake_quant

@dataclass
class Quantizer:
    fmt: Format
    scale: torch.Tensor
    axis: int | None = None
    block_size: int = 0

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        return fake_quant(self.fmt, t, self.scale, axis=self.axis, block_size=self.block_size)


@dataclass
class SearchResult:
    weight: Quantizer
    act: Quantizer | None
    error_before: float  # relative output MSE with the initial (min-max / calibrated) quantizers
    error_after: float


def searchable(fmt: Format | None) -> bool:
    return isinstance(fmt, FloatFormat) or (isinstance(fmt, IntFormat) and fmt.symmetric)


def format_candidates(fmt: Format, search_format: bool, refuses=lambda name: "") -> list[Format]:
    """The format itself, or every E/M split of its width (E from 1 to min(width - 1, 5)) that the
    targets carry (`refuses(name)` gives why one cannot; the requested format always stays)."""
    if not search_format or not isinstance(fmt, FloatFormat):
        return [fmt]
    bits = fmt.total_bits - 1
    splits = [FloatFormat(e, bits - e) for e in range(1, min(bits, 5) + 1)]
    return [f for f in splits if f == fmt or not refuses(f.name)]


def _minmax_scale(fmt: Format, t: torch.Tensor, axis: int | None) -> torch.Tensor:
    if axis is None:
        amax = t.abs().max()
    else:
        dims = [d for d in range(t.dim()) if d != axis % t.dim()]
        amax = t.abs().amax(dims)
    return fmt.params(-amax, amax)[0]


class LayerSearch:
    """Replays one layer on captured inputs; holds the reference output."""

    def __init__(self, node: Node, x: torch.Tensor, weight: torch.Tensor, w_axis: int | None, block_size: int,
                 candidates: int = 100):
        self.node, self.x, self.w = node, x, weight
        self.w_axis, self.block_size = w_axis, block_size
        self.alphas = torch.linspace(0.01, 1.2, candidates).tolist()
        self.rest = [None if v is None else v.data for v in node.inputs[2:]]
        self.ref = self.forward(x, weight)
        self.power = float((self.ref.double() ** 2).mean()) or 1.0
        layout = get_op(node.op).layout
        self.per_channel = w_axis is not None and not block_size and layout.quant_row_axis == layout.out_axis \
            and layout.output_channels_match_rows(node)
        self.out_axis = layout.channel_axis_from_end(node)  # linear inputs are replayed as rows

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return get_op(self.node.op).run([x, w, *self.rest], self.node.attrs)[0]

    def error(self, x: torch.Tensor, w: torch.Tensor) -> float:
        return float(((self.forward(x, w) - self.ref).double() ** 2).mean()) / self.power

    def _channel_error(self, out: torch.Tensor) -> torch.Tensor:
        err = (out - self.ref).double() ** 2
        axis = self.out_axis % err.dim()
        return err.sum([d for d in range(err.dim()) if d != axis])

    def search_weight(self, fmts: list[Format], init: Quantizer, xq: torch.Tensor) -> Quantizer:
        best, best_total = init, None
        for fmt in fmts:
            scale, err = self._search_scale(fmt, init.scale * (init.fmt.max_value / fmt.max_value), xq)
            total = float(err.sum())
            if best_total is None or total < best_total:
                best, best_total = Quantizer(fmt, scale, self.w_axis, self.block_size), total
        return best

    def _search_scale(self, fmt: Format, s0: torch.Tensor, xq: torch.Tensor):
        best_scale, best_err = None, None
        for alpha in self.alphas:
            s = (s0 * alpha).float()
            out = self.forward(xq, fake_quant(fmt, self.w, s, axis=self.w_axis, block_size=self.block_size))
            err = self._channel_error(out) if self.per_channel else \
                ((out - self.ref).double() ** 2).sum().reshape(1)
            if best_err is None:
                best_scale, best_err = s.clone(), err
                continue
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            if self.per_channel:
                best_scale = torch.where(better.to(s.device), s, best_scale)
            elif bool(better):
                best_scale = s.clone()
        return best_scale, best_err

    def search_act(self, fmts: list[Format], init: Quantizer, wq: torch.Tensor) -> Quantizer:
        best, best_err = init, None
        for fmt in fmts:
            s0 = init.scale * (init.fmt.max_value / fmt.max_value)
            for alpha in self.alphas:
                q = Quantizer(fmt, (s0 * alpha).float(), init.axis, init.block_size)
                err = self.error(q(self.x), wq)
                if best_err is None or err < best_err:
                    best, best_err = q, err
        return best


def search_layer(node: Node, x: torch.Tensor, weight: torch.Tensor, wq: Quantizer, aq: Quantizer | None,
                 *, search_format: bool, search_act: bool = True, rounds: int = 2,
                 candidates: int = 100, refuses=lambda name: "") -> SearchResult:
    """Alternate weight and activation searches for `rounds` rounds. With `aq` None the input stays
    float; with `search_act` False it keeps `aq` (an input shared with a layer searched before)."""
    s = LayerSearch(node, x, weight, wq.axis, wq.block_size, candidates)
    before = s.error(aq(x) if aq else x, wq(weight))
    w_fmts = format_candidates(wq.fmt, search_format, refuses) if searchable(wq.fmt) else []
    a_fmts = format_candidates(aq.fmt, search_format, refuses) \
        if search_act and aq is not None and searchable(aq.fmt) else []
    for _ in range(rounds):
        if w_fmts:
            wq = s.search_weight(w_fmts, wq, aq(x) if aq else x)
        if a_fmts:
            aq = s.search_act(a_fmts, aq, wq(weight))
    after = s.error(aq(x) if aq else x, wq(weight))
    return SearchResult(wq, aq, before, after)


def weight_reconstruction(w: torch.Tensor, fmt: Format, axis: int | None, *, search_format: bool = False,
                          candidates: int = 100) -> tuple[Format, torch.Tensor, float]:
    """Weight-only variant (the layer's input is the identity): per channel, the format (per
    tensor) and scale minimizing ||Q(W) - W||^2. Returns (format, scale, relative MSE)."""
    best = None
    for f in format_candidates(fmt, search_format):
        s0 = _minmax_scale(f, w, axis)
        best_scale, best_err = None, None
        for alpha in torch.linspace(0.01, 1.2, candidates).tolist():
            s = (s0 * alpha).float()
            err = (fake_quant(f, w, s, axis=axis) - w) ** 2
            err = err.sum([d for d in range(w.dim()) if d != axis % w.dim()]) if axis is not None else err.sum()
            if best_err is None:
                best_scale, best_err = s, err
                continue
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best_scale = torch.where(better, s, best_scale)
        total = float(best_err.double().sum()) / float((w.double() ** 2).sum())
        if best is None or total < best[2]:
            best = (f, best_scale, total)
    return best

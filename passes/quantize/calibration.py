"""Calibration: run the float graph on calibration batches and choose ranges.

`observe(graph, batches, values, ...)` runs the graph node by node (the op registry's torch
references, like the interpreter) and records, for each watched value, its min/max per tensor and
per channel, a seeded random sample of its elements (for percentile and MSE clipping) and, where
asked, a capped number of whole rows (the layer inputs the LLM-FP4 search replays).

Range choice (`choose_range`): `minmax` (the observed extremes), `percentile` (the p-th
percentiles of the sample) or `mse` (the clipping factor, among 40 from 0.05 to 1 times the
extremes, whose fake-quantization of the sample has the least squared error). Weights
(`weight_params`): min-max, or for formats under 8 bits the MSE-optimal clipping factor per scale
(20 from 0.3 to 1).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from compiler import calibration as calib_ctx
from compiler.ir import Graph, Value
from compiler.ops import get_op
from compiler.quant.formats import Format, fake_quant

SAMPLE_PER_BATCH = 1 << 14
SAMPLE_CAP = 1 << 16
CLIP_METHODS = ("minmax", "percentile", "mse")


@dataclass
class Stats:
    """What calibration saw of one value."""

    axis: int | None = None           # channel axis for per-channel ranges
    lo: torch.Tensor | None = None    # per tensor
    hi: torch.Tensor | None = None
    lo_c: torch.Tensor | None = None  # per channel along axis
    hi_c: torch.Tensor | None = None
    samples: list[torch.Tensor] = field(default_factory=list)
    rows: list[torch.Tensor] = field(default_factory=list)
    keep_rows: int = 0                # how many leading-dim rows to keep for the search

    @property
    def sample(self) -> torch.Tensor:
        return torch.cat(self.samples)[:SAMPLE_CAP]

    def update(self, t: torch.Tensor, gen: torch.Generator) -> None:
        t = t.detach().float()
        lo, hi = t.min(), t.max()
        self.lo = lo if self.lo is None else torch.minimum(self.lo, lo)
        self.hi = hi if self.hi is None else torch.maximum(self.hi, hi)
        if self.axis is not None:
            moved = t.movedim(self.axis, 0).reshape(t.shape[self.axis], -1)
            lo_c, hi_c = moved.amin(1), moved.amax(1)
            self.lo_c = lo_c if self.lo_c is None else torch.minimum(self.lo_c, lo_c)
            self.hi_c = hi_c if self.hi_c is None else torch.maximum(self.hi_c, hi_c)
        flat = t.reshape(-1)
        if flat.numel() > SAMPLE_PER_BATCH:
            flat = flat[torch.randint(0, flat.numel(), (SAMPLE_PER_BATCH,), generator=gen)]
        if sum(s.numel() for s in self.samples) < SAMPLE_CAP:
            self.samples.append(flat)
        if self.keep_rows and sum(r.shape[0] for r in self.rows) < self.keep_rows:
            self.rows.append(t)

    def kept(self) -> torch.Tensor:
        return torch.cat(self.rows)[: self.keep_rows] if self.rows else torch.empty(0)


@torch.no_grad()
def observe(graph: Graph, batches: list[tuple[torch.Tensor, ...]], watch: dict[Value, Stats],
            seed: int = 0) -> dict[Value, Stats]:
    """Run the float graph on every batch, updating the Stats of each watched value."""
    gen = torch.Generator().manual_seed(seed)
    nodes = graph.nodes
    with calib_ctx.progress("calibrating", len(batches)) as advance:
        for batch in batches:
            env: dict[Value, torch.Tensor] = dict(zip(graph.inputs, batch))
            for v in graph.inputs:
                if v in watch:
                    watch[v].update(env[v], gen)
            for node in nodes:
                args = [None if v is None else (v.data if v.data is not None else env[v]) for v in node.inputs]
                for out, result in zip(node.outputs, get_op(node.op).run(args, node.attrs)):
                    env[out] = result
                    if out in watch:
                        watch[out].update(result, gen)
            advance()
    return watch


def choose_range(stats: Stats, fmt: Format, method: str, percentile: float = 99.99,
                 per_channel: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(lo, hi) for a format: per tensor, or per channel (each channel's extremes; with percentile,
    clipped at the tensor's percentiles)."""
    lo, hi = stats.lo, stats.hi
    if method == "percentile":
        sample = stats.sample
        q = torch.quantile(sample, torch.tensor([1 - percentile / 100, percentile / 100]))
        lo, hi = torch.minimum(q[0], torch.zeros(())), torch.maximum(q[1], torch.zeros(()))
    elif method == "mse":
        alpha = best_clip(stats.sample, fmt, lo, hi)
        lo, hi = lo * alpha, hi * alpha
    if not per_channel:
        return lo, hi
    if method == "percentile":  # the channel extremes, clipped at the tensor's percentiles
        return torch.maximum(stats.lo_c, lo), torch.minimum(stats.hi_c, hi)
    return stats.lo_c, stats.hi_c  # a tensor-wide MSE clip would cut the widest channels


def best_clip(sample: torch.Tensor, fmt: Format, lo: torch.Tensor, hi: torch.Tensor,
              candidates: int = 40) -> float:
    """The clipping factor alpha whose range [alpha lo, alpha hi] quantizes `sample` best (MSE)."""
    best, best_err = 1.0, float("inf")
    for alpha in torch.linspace(0.05, 1.0, candidates).tolist():
        scale, zp = fmt.params(lo * alpha, hi * alpha)
        err = float(((fake_quant(fmt, sample, scale, zp) - sample) ** 2).mean())
        if err < best_err:
            best, best_err = alpha, err
    return best


def weight_params(w: torch.Tensor, fmt: Format, axis: int | None, block_size: int, method: str,
                  candidates: int = 20) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(scale, zero point, tensor scale) for a weight: min-max, or per-scale MSE-optimal clipping."""
    from compiler.quant.formats import BlockFormat, block_amax

    if isinstance(fmt, BlockFormat):
        scale, tensor_scale = fmt.params_for(w, axis)
        return scale, None, tensor_scale
    w = w.detach().float()
    if axis is None:
        lo, hi = w.min(), w.max()
    elif block_size:
        amax = block_amax(w, axis, block_size)  # blocks are symmetric around zero
        lo, hi = -amax, amax
        if fmt.has_zero_point:
            lo = -block_amax(-w.clamp(max=0), axis, block_size)
            hi = block_amax(w.clamp(min=0), axis, block_size)
    else:
        dims = [d for d in range(w.dim()) if d != axis % w.dim()]
        lo, hi = w.amin(dims), w.amax(dims)
    scale, zp = fmt.params(lo, hi)
    if method != "mse" or fmt.storage_bits >= 8:  # at 8 bits clipping gains nothing measurable
        return scale, zp, None
    best_err = None
    best_scale, best_zp = scale, zp
    for alpha in torch.linspace(0.3, 1.0, candidates).tolist():
        s, z = fmt.params(lo * alpha, hi * alpha)
        err = _per_scale_error(w, fake_quant(fmt, w, s, z, axis=axis, block_size=block_size), s, axis, block_size)
        if best_err is None:
            best_err = err
            best_scale, best_zp = s, z
            continue
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_scale = torch.where(better, s, best_scale)
        if z is not None:
            best_zp = torch.where(better, z, best_zp)
    return best_scale, best_zp, None


def _per_scale_error(w: torch.Tensor, q: torch.Tensor, scale: torch.Tensor, axis, block_size) -> torch.Tensor:
    """Squared error summed over the elements sharing each scale (scale's shape)."""
    err = q - w
    err = err * err
    if axis is None:
        return err.sum()
    axis = axis % w.dim()
    if block_size:
        d = w.shape[axis]
        blocks = -(-d // block_size)
        moved = err.movedim(axis, -1)
        moved = torch.nn.functional.pad(moved, (0, blocks * block_size - d))
        return moved.reshape(*moved.shape[:-1], blocks, block_size).sum(-1).movedim(-1, axis)
    dims = [d for d in range(w.dim()) if d != axis]
    return err.sum(dims)

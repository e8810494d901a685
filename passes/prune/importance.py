"""Importance of every unit, aggregated over all the weights its removal touches.

For each site (an index array) and each trainable weight along it, a per-index score is computed
(`l1`: sum |w|, `l2`: sqrt of sum w^2, `taylor`: sum |w * dL/dw|, `bn-scale`: |gamma| of norm
layers, `lamp`: layer-adaptive magnitude), summed per unit, and normalized so that the units of
that weight have mean 1 (LAMP scores are already comparable across layers). A unit's importance
is the mean over all the weights it occurs in: a conv output channel counts its conv rows, its
BatchNorm, and the input columns of every consumer, through every concat offset and reshape.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from compiler import memory
from compiler.ir import Graph, Value
from compiler.ops import get_op
from passes.prune.groups import Analysis

METHODS = ("l1", "l2", "bn-scale", "lamp", "random", "taylor")
_NORMS = {"batch_norm": 3, "layer_norm": 1, "group_norm": 1}  # op -> index of its scale input


def unit_scores(analysis: Analysis, method: str, *, seed: int = 0,
                calibration: Sequence[Sequence[torch.Tensor]] = ()) -> np.ndarray:
    n = analysis.num_units
    if method == "random":
        return np.random.default_rng(seed).random(n)
    if method not in METHODS:
        raise ValueError(f"unknown importance '{method}'; choose one of {', '.join(METHODS)}")
    grads = gradients(analysis.graph, calibration) if method == "taylor" else {}
    norm_scales = _norm_scales(analysis.graph) if method == "bn-scale" else set()
    total, count = np.zeros(n), np.zeros(n)
    fallback_total, fallback_count = np.zeros(n), np.zeros(n)
    cache: dict[Value, torch.Tensor] = {}
    for site in analysis.sites:
        mask = site.units >= 0
        if not mask.any():
            continue
        present, local = np.unique(site.units[mask], return_inverse=True)  # stay linear: work per site
        for v, d in analysis.weight_members(site):
            if not v.dtype.is_floating_point:
                continue
            if v not in cache:
                cache[v] = _magnitude(v.data, method, grads.get(v))
            per_index = _per_index(cache[v], d)
            target = (total, count)
            if method == "bn-scale" and v not in norm_scales:
                target = (fallback_total, fallback_count)
            contrib = np.bincount(local, weights=per_index[mask], minlength=len(present))
            if method == "l2":
                contrib = np.sqrt(contrib)
            target[0][present] += _lamp(contrib) if method == "lamp" else _normalize(contrib)
            target[1][present] += 1
    if method == "bn-scale":  # units of groups without a norm layer fall back to l1
        use = count == 0
        total[use], count[use] = fallback_total[use], fallback_count[use]
    return total / np.maximum(count, 1)


def _per_index(t: torch.Tensor, d: int) -> np.ndarray:
    """Sum of `t` over every dim but `d` (leading dims first: contiguous, fast reductions)."""
    if d > 0:
        t = t.sum(dim=tuple(range(d)))
    return t.reshape(t.shape[0], -1).sum(1).to(torch.float64).numpy()


def _magnitude(w: torch.Tensor, method: str, grad: torch.Tensor | None) -> torch.Tensor:
    """What a method sums per index: |w|, w^2, or |w * dL/dw| (first-order Taylor)."""
    w = w.detach()
    if method == "taylor":
        return (w * grad).abs() if grad is not None else torch.zeros_like(w)
    return w * w if method in ("l2", "lamp") else w.abs()


def _normalize(contrib: np.ndarray) -> np.ndarray:
    mean = contrib.mean()
    return contrib / mean if mean > 0 else contrib


def _lamp(contrib: np.ndarray) -> np.ndarray:
    """LAMP: a unit's squared magnitude over the sum of those not smaller (same weight)."""
    order = np.argsort(contrib, kind="stable")
    vals = contrib[order]
    tail = np.cumsum(vals[::-1])[::-1]
    out = np.empty_like(contrib)
    out[order] = np.where(tail > 0, vals / np.where(tail > 0, tail, 1), 0)
    return out


def _norm_scales(graph: Graph) -> set[Value]:
    scales = set()
    for node in graph.nodes:
        i = _NORMS.get(node.op)
        if i is not None and i < len(node.inputs) and node.inputs[i] is not None:
            scales.add(node.inputs[i])
    return scales


def gradients(graph: Graph, calibration: Sequence[Sequence[torch.Tensor]]) -> dict[Value, torch.Tensor]:
    """dL/dw for every trainable weight, L = mean square of the outputs, over calibration batches."""
    leaves = {w: w.data.detach().requires_grad_(True) for w in graph.weights.values()
              if w.is_param and w.data is not None and w.data.is_floating_point()}
    grads: dict[Value, torch.Tensor] = {}
    with torch.enable_grad():
        for inputs in calibration:
            env = dict(zip(graph.inputs, inputs))
            for node in graph.nodes:
                args = [None if v is None else leaves.get(v, v.data if v.data is not None else env.get(v))
                        for v in node.inputs]
                env.update(zip(node.outputs, get_op(node.op).run(args, node.attrs)))
            outs = [env[v] if v.producer is not None else v.data for v in graph.outputs]
            loss = sum((o.float() ** 2).mean() for o in outs if o.is_floating_point() and o.requires_grad)
            if not isinstance(loss, torch.Tensor):
                continue
            for w, g in zip(leaves, torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)):
                if g is not None:
                    grads[w] = grads[w] + g if w in grads else g
    return grads


def calibration_inputs(graph: Graph, batches: int, seed: int = 0) -> list[tuple[torch.Tensor, ...]]:
    """Random inputs of the graph's types: normal floats; valid indices for embedding lookups."""
    memory.check(batches * sum(memory.tensor_bytes(v.shape, v.dtype) for v in graph.inputs),
                 f"{batches} batch(es) of random calibration inputs")
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(batches):
        batch = []
        for v in graph.inputs:
            if v.dtype.is_floating_point:
                batch.append(torch.randn(v.shape, generator=gen).to(v.dtype))
                continue
            rows = [u.inputs[1].shape[0] for u in v.users if u.op == "embedding"]
            bound = min(rows) if rows else 2
            batch.append(torch.randint(0, bound, v.shape, generator=gen).to(v.dtype))
        out.append(tuple(batch))
    return out

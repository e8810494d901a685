"""Importance of every group, the quantity latency-constrained allocation keeps as much of as it can.

Per weight: `l1` |w|, `l2` w^2 (a group scores the root of its sum), `taylor` |w * dL/dw| with
L the mean square of the outputs on calibration data (first-order estimate of the loss change
when the weight goes to zero). A SIMD group sums its `lanes` weights; an N:M group is one weight.
Scores are normalized to sum 1 per layer: every layer holds the same importance whatever the scale
of its weights, so the budget solver weighs losing a share of a small layer (a stem conv of 18
groups) like the same share of a big one, instead of counting groups (which makes small, sensitive
layers look cheap to empty).
"""
from __future__ import annotations

import torch

from compiler.sparse.packing import block_groups
from passes.simd_sparsity.groups import Candidate

METHODS = ("l1", "l2", "taylor")


def group_scores(layer: Candidate, method: str, pattern: str, lanes: int,
                 grad: torch.Tensor | None = None) -> torch.Tensor:
    """[groups, blocks, cols] for simd, [groups, rows, cols] for nm (float64, summing to 1)."""
    w = layer.matrices.double()
    if method == "taylor":
        g = layer.layout.matrices(grad, layer.node).double() if grad is not None else torch.zeros_like(w)
        per_weight = (w * g).abs()
    elif method == "l2":
        per_weight = w * w
    else:
        per_weight = w.abs()
    scores = block_groups(per_weight, lanes).sum(dim=2) if pattern == "simd" else per_weight
    if method == "l2":
        scores = scores.sqrt()
    total = scores.sum()
    return scores / total if total > 0 else scores


def removed_curve(scores: torch.Tensor) -> torch.Tensor:
    """removed[k]: importance lost when the k least important groups go (k = 0 .. all)."""
    ordered = torch.sort(scores.reshape(-1)).values
    return torch.cat([torch.zeros(1, dtype=ordered.dtype), ordered.cumsum(0)])

"""Physically remove the chosen units: slice weights, resize values, rewrite attributes.

Every (value, dim) with an index array keeps the indices whose unit stays. Weights get new,
smaller tensors (the user's tensors are never modified); node results get their new types; and
the attributes that spell sizes are rewritten from the new shapes by the table `ATTRS`: reshape
and expand targets (head counts included), split sizes, slice bounds, conv groups, LayerNorm's
normalized_shape, GroupNorm's group count. The shapes are then re-inferred from the op
registry, and any disagreement is reported as a bug rather than left for a backend to find.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from compiler.errors import IRError
from compiler.ir import Graph, Node, TensorType, Value
from compiler.ops import get_op
from passes.prune.groups import Analysis

Shapes = dict[Value, tuple[int, ...]]
Masks = dict[tuple[Value, int], np.ndarray]


def keep_masks(analysis: Analysis, removed: np.ndarray) -> Masks:
    """(value, dim) -> boolean keep mask, for the dims that lose indices."""
    by_site = []
    for site in analysis.sites:
        mask = site.units >= 0
        keep = np.ones(len(site.units), dtype=bool)
        keep[mask] = ~removed[site.units[mask]]
        by_site.append(None if keep.all() else keep)
    return {key: by_site[i] for key, i in analysis.site_of.items() if by_site[i] is not None}


def shrink(graph: Graph, analysis: Analysis, removed: np.ndarray) -> int:
    """Remove the units marked in `removed`; returns the number of weight elements removed."""
    masks = keep_masks(analysis, removed)
    if not masks:
        return 0
    shapes: Shapes = {}
    for (v, d), keep in masks.items():
        shape = list(shapes.get(v, v.shape))
        shape[d] = int(keep.sum())
        shapes[v] = tuple(shape)
    before = sum(w.type.numel for w in graph.weights.values())
    new_attrs = {}  # computed from the old types first, then everything is resized at once
    for node in graph.nodes:
        rule = ATTRS.get(node.op)
        if rule is not None and any(v in shapes for v in [*node.inputs, *node.outputs] if v is not None):
            attrs = dict(node.attrs)
            rule(node, attrs, shapes, masks)
            new_attrs[node] = get_op(node.op).complete_attrs(attrs)
    for node, attrs in new_attrs.items():
        node.attrs = attrs
    for v, shape in shapes.items():
        if v.data is not None:
            _slice_weight(v, [masks.get((v, d)) for d in range(v.rank)])
        else:
            v.type = TensorType(shape, v.dtype)
    _check(graph)
    return before - sum(w.type.numel for w in graph.weights.values())


def _slice_weight(v: Value, keeps: list[np.ndarray | None]) -> None:
    t = v.data
    for d, keep in enumerate(keeps):
        if keep is not None:
            t = t.index_select(d, torch.from_numpy(np.nonzero(keep)[0]))
    v.data = t.contiguous()
    v.type = TensorType.of(v.data)


def _shape(v: Value, shapes: Shapes) -> tuple[int, ...]:
    return shapes.get(v, v.shape)


def _check(graph: Graph) -> None:
    for node in graph.nodes:
        inferred = get_op(node.op).infer([None if v is None else v.type for v in node.inputs], node.attrs)
        if inferred != [o.type for o in node.outputs]:
            raise IRError(f"prune: node {node.name} ({node.op}) was resized inconsistently: "
                          f"{inferred} vs {[o.type for o in node.outputs]} (a bug in passes/prune)")


# ---- attribute rules: (node, attrs to update, new shapes, keep masks) -----------------------------
def _target_shape(node: Node, attrs: dict, shapes: Shapes, masks: Masks) -> None:
    attrs["shape"] = _shape(node.output, shapes)


def _split(node: Node, attrs: dict, shapes: Shapes, masks: Masks) -> None:
    d = attrs["dim"] % node.inputs[0].rank
    attrs["sizes"] = tuple(_shape(o, shapes)[d] for o in node.outputs)


def _slice(node: Node, attrs: dict, shapes: Shapes, masks: Masks) -> None:
    keep = masks.get((node.inputs[0], attrs["dim"]))
    if keep is not None:  # strided slices of channels are pinned by the analysis
        n = len(keep)
        attrs["start"] = int(keep[:min(attrs["start"], n)].sum())
        attrs["end"] = int(keep[:min(attrs["end"], n)].sum())


def _conv_groups(node: Node, attrs: dict, shapes: Shapes, masks: Masks) -> None:
    if attrs["groups"] > 1:
        x, w = node.inputs[0], node.inputs[1]
        c = x.rank - len(attrs["stride"]) - 1
        attrs["groups"] = _shape(x, shapes)[c] // _shape(w, shapes)[1]


def _conv_transpose_groups(node: Node, attrs: dict, shapes: Shapes, masks: Masks) -> None:
    if attrs["groups"] > 1:
        out, w = node.output, node.inputs[1]
        c = out.rank - len(attrs["stride"]) - 1
        attrs["groups"] = _shape(out, shapes)[c] // _shape(w, shapes)[1]


def _layer_norm(node: Node, attrs: dict, shapes: Shapes, masks: Masks) -> None:
    n = len(attrs["normalized_shape"])
    attrs["normalized_shape"] = _shape(node.inputs[0], shapes)[-n:]


def _group_norm(node: Node, attrs: dict, shapes: Shapes, masks: Masks) -> None:
    x = node.inputs[0]
    per_group = x.shape[1] // attrs["num_groups"]
    attrs["num_groups"] = _shape(x, shapes)[1] // per_group


ATTRS: dict[str, Callable[[Node, dict, Shapes, Masks], None]] = {
    "reshape": _target_shape, "expand": _target_shape, "split": _split, "slice": _slice,
    "conv": _conv_groups, "conv_transpose": _conv_transpose_groups,
    "layer_norm": _layer_norm, "group_norm": _group_norm,
}

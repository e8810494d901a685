"""Shared helpers of the prune tests: the zero-then-prune exactness check and backend runs."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from compiler.backend import get_backend
from compiler.interpreter import interpret
from compiler.ir import Graph, Value
from compiler.ops import get_op
from compiler.verifier import verify
from passes.prune import analyze, prune_units
from passes.prune.groups import Analysis, Group
from passes.prune.shrink import keep_masks

RTOL, ATOL = 1e-4, 1e-5


def group_of(analysis: Analysis, weight: str, dim: int = 0) -> Group:
    """The group holding the first prunable index of dim `dim` of the weight named `weight`."""
    value = analysis.graph.weights[weight]
    site = analysis.sites[analysis.site_of[(value, dim)]]
    units = site.units[site.units >= 0]
    assert len(units), f"{weight}[{dim}] has no prunable index"
    return analysis.groups[int(analysis.unit_group[units[0]])]


def positions(analysis: Analysis, units: np.ndarray, value: Value, dim: int) -> list[int]:
    site = analysis.sites[analysis.site_of[(value, dim)]]
    chosen = np.zeros(analysis.num_units, dtype=bool)
    chosen[units] = True
    hit = np.zeros(len(site.units), dtype=bool)
    hit[site.units >= 0] = chosen[site.units[site.units >= 0]]
    return np.nonzero(hit)[0].tolist()


def zero_units(analysis: Analysis, units: np.ndarray) -> int:
    """Zero every trainable weight entry the units occupy (in place: the test owns the model)."""
    zeroed = 0
    for site in analysis.sites:
        for v, d in analysis.weight_members(site):
            idx = positions(analysis, units, v, d)
            if idx and v.dtype.is_floating_point:
                with torch.no_grad():
                    v.data.index_fill_(d, torch.tensor(idx), 0.0)
                zeroed += len(idx)
    return zeroed


@torch.no_grad()
def interpret_masked(graph: Graph, inputs: Sequence[torch.Tensor], masks: dict) -> list[torch.Tensor]:
    """Run the graph, but layer norms normalize over kept channels only (what pruning computes)."""
    env = dict(zip(graph.inputs, inputs))
    for node in graph.nodes:
        args = [None if v is None else (v.data if v.data is not None else env[v]) for v in node.inputs]
        x = node.inputs[0]
        n = len(node.attrs.get("normalized_shape", ()))
        keeps = [masks.get((x, x.rank - n + i)) for i in range(n)] if node.op == "layer_norm" else []
        if any(k is not None for k in keeps):
            env[node.outputs[0]] = _masked_layer_norm(args, node.attrs, keeps)
            continue
        env.update(zip(node.outputs, get_op(node.op).run(args, node.attrs)))
    return [v.data if v.data is not None else env[v] for v in graph.outputs]


def _masked_layer_norm(args, attrs, keeps) -> torch.Tensor:
    x, w, b = (args + [None, None])[:3]
    shape = tuple(attrs["normalized_shape"])
    keep = torch.ones(shape, dtype=torch.bool)
    for i, k in enumerate(keeps):
        if k is not None:
            view = [1] * len(shape)
            view[i] = shape[i]
            keep = keep & torch.from_numpy(k).view(view)
    flat = keep.reshape(-1)
    xs = x.reshape(*x.shape[:x.dim() - len(shape)], -1)[..., flat]
    ws = None if w is None else w.reshape(-1)[flat]
    bs = None if b is None else b.reshape(-1)[flat]
    out = torch.zeros(*xs.shape[:-1], flat.numel(), dtype=x.dtype)
    out[..., flat] = F.layer_norm(xs, (xs.shape[-1],), ws, bs, attrs["eps"])
    return out.reshape(x.shape)


def run_backends(graph: Graph, inputs: Sequence[torch.Tensor]) -> tuple[list, list]:
    torch_out = get_backend("pytorch")().lower(graph, None).run(*inputs)
    onnx_out = get_backend("onnx")().lower(graph, None).run(*inputs)
    return torch_out, onnx_out


def assert_close(got: Sequence[torch.Tensor], expected: Sequence[torch.Tensor], what: str,
                 rtol: float = RTOL, atol: float = ATOL) -> None:
    assert len(got) == len(expected), what
    for g, e in zip(got, expected):
        assert g.shape == e.shape, f"{what}: shape {list(g.shape)} vs {list(e.shape)}"
        if e.is_floating_point():
            scale = max(1.0, float(e.abs().max())) if e.numel() else 1.0
            torch.testing.assert_close(g, e, rtol=rtol, atol=atol * scale, msg=what)
        else:
            assert torch.equal(g, e), what


def zero_then_prune(graph: Graph, inputs: Sequence[torch.Tensor], group: Group | None = None,
                    analysis: Analysis | None = None, fraction: float = 0.5, seed: int = 0):
    """Zero a random part of a group, take the reference, prune exactly that part, compare.

    Returns (analysis, pruned units) after asserting the pruned graph verifies, and that the
    interpreter and both backends reproduce the zeroed original.
    """
    analysis = analysis or analyze(graph)
    assert group is not None
    rng = np.random.default_rng(seed)
    count = max(1, min(group.size - 1, int(round(group.size * fraction))))
    units = np.sort(rng.choice(group.units, size=count, replace=False))
    assert zero_units(analysis, units) > 0
    removed = np.zeros(analysis.num_units, dtype=bool)
    removed[units] = True
    reference = interpret_masked(graph, inputs, keep_masks(analysis, removed))
    params = graph.param_count()
    prune_units(graph, analysis, removed)
    verify(graph)
    assert graph.param_count() < params
    assert_close(interpret(graph, *inputs), reference, "interpreter after pruning")
    torch_out, onnx_out = run_backends(graph, inputs)
    assert_close(torch_out, reference, "pytorch backend after pruning")
    assert_close(onnx_out, torch_out, "onnxruntime vs pytorch after pruning")
    return analysis, units


def clone(graph: Graph, copy_weights: bool = False) -> Graph:
    """A structural copy sharing weight tensors (pruning never writes into them); with
    `copy_weights`, owning copies (for tests that zero weights in place)."""
    out = Graph(graph.name)
    env: dict[Value, Value] = {}
    for v in graph.inputs:
        env[v] = out.add_input(v.name, v.type)
    for name, w in graph.weights.items():
        env[w] = out.add_weight(name, w.data.clone() if copy_weights else w.data, is_param=w.is_param)
    for node in graph.nodes:
        new = out.create_node(node.op, [None if v is None else env[v] for v in node.inputs], node.attrs,
                              name=node.name, source=node.source, out_types=[o.type for o in node.outputs])
        env.update(zip(node.outputs, new.outputs))
    out.outputs = [env[v] for v in graph.outputs]
    return out

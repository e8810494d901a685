"""Piecewise-linear latency model of SIMD-group sparse layers, measured on this host.

For every layer shape the sparse kernel is timed at a few densities (1, .75, .5, .25, .1 and 0,
random groups kept) and torch's dense layer once; between the points the latency is interpolated
linearly. A layer left dense (density 1) runs torch's kernel, so its latency is the dense time.
Tables are cached per host in `<cache>/latency/<host>.json` (the key hashes the CPU, the kernel
source and the torch version), so a model is measured once. Everything outside the candidate
layers (activations, pooling, additions, layers left dense for a reason) is measured once per
model by replaying those ops (`rest_ms`). Timings are the fastest of several runs on one thread.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from compiler.ir import Graph, Node
from compiler.ops import get_op
from compiler.sparse.build import SOURCE, cache_dir, host_cpu
from compiler.sparse.layers import kernel_layer
from passes.simd_sparsity.groups import Candidate, keep_top, simd_matrix_mask, weight_mask

DENSITIES = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class LatencyTable:
    """Kernel milliseconds at measured densities (ascending) and torch's dense milliseconds."""

    densities: tuple[float, ...]
    kernel_ms: tuple[float, ...]
    dense_ms: float

    def kernel(self, density: float) -> float:
        return float(np.interp(density, self.densities, self.kernel_ms))

    def layer(self, density: float) -> float:
        """What the layer costs at `density`: torch's dense kernel when nothing is pruned."""
        return self.dense_ms if density >= 1.0 else self.kernel(density)


@contextmanager
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def best_ms(fn: Callable[[], object], budget_s: float = 0.15, max_runs: int = 40) -> float:
    """Fastest of several runs (after two warm-ups), within about `budget_s` seconds."""
    fn()
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    runs = int(min(max_runs, max(5, budget_s / max(first, 1e-6))))
    best = first
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def layer_key(node: Node, lanes: int) -> str:
    """Everything the kernel's and torch's time depend on: op, shapes, attributes, lanes."""
    shapes = ";".join("x".join(map(str, v.shape)) if v is not None else "-" for v in node.inputs)
    attrs = ",".join(f"{k}={v}" for k, v in sorted(node.attrs.items()))
    return f"{node.op}({shapes}){{{attrs}}}/lanes={lanes}"


def random_sparse_weight(layer: Candidate, lanes: int, density: float, gen: torch.Generator) -> torch.Tensor:
    g, rows, cols = layer.matrix_shape
    blocks = -(-rows // lanes)
    keep = keep_top(torch.rand(g, blocks, cols, generator=gen), round(density * g * blocks * cols))
    mask = weight_mask(layer, simd_matrix_mask(keep, rows, lanes))
    return torch.randn(layer.weight.shape, generator=gen) * mask


def measure(layer: Candidate, lanes: int, densities: Sequence[float] = DENSITIES) -> LatencyTable:
    """Time the kernel at each density and torch's dense layer, on random data of the layer's shapes."""
    node, gen = layer.node, torch.Generator().manual_seed(0)
    opdef = get_op(node.op)
    inputs = [torch.randn(v.shape, generator=gen) if v is not None and v.data is None else
              (v.data if v is not None else None) for v in node.inputs]
    bias_value = layer.layout.bias_value(node)
    bias = bias_value.data if bias_value is not None else None
    kernel_ms = []
    with one_thread(), torch.no_grad():
        for density in sorted(densities):
            sparse = kernel_layer(node, random_sparse_weight(layer, lanes, density, gen), bias, lanes)
            kernel_ms.append(best_ms(lambda: sparse(inputs[0])))
        dense_ms = best_ms(lambda: opdef.run(inputs, node.attrs))
    return LatencyTable(tuple(sorted(densities)), tuple(kernel_ms), dense_ms)


class LatencyModel:
    """Latency tables for layers, measured once per host and layer shape, cached on disk."""

    def __init__(self, path: Path | None = None):
        self.path = path or default_path()
        self._tables: dict[str, LatencyTable] = {}
        self._dirty = False
        if self.path.exists():
            try:
                raw = json.loads(self.path.read_text())
                self._tables = {k: LatencyTable(tuple(v["densities"]), tuple(v["kernel_ms"]), v["dense_ms"])
                                for k, v in raw.items()}
            except (OSError, ValueError, KeyError, TypeError):
                self._tables = {}  # a damaged cache is measured again

    def table(self, layer: Candidate, lanes: int) -> LatencyTable:
        key = layer_key(layer.node, lanes)
        if key not in self._tables:
            self._tables[key] = measure(layer, lanes)
            self._dirty = True
        return self._tables[key]

    def save(self) -> None:
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        current = {}
        if self.path.exists():  # keep what another process measured meanwhile
            try:
                current = json.loads(self.path.read_text())
            except (OSError, ValueError):
                current = {}
        current.update({k: {"densities": t.densities, "kernel_ms": t.kernel_ms, "dense_ms": t.dense_ms}
                        for k, t in self._tables.items()})
        fd, tmp = tempfile.mkstemp(suffix=".json", dir=self.path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(current, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)
        self._dirty = False


def default_path() -> Path:
    host = hashlib.sha256("\0".join([host_cpu(), SOURCE.read_text(), torch.__version__]).encode())
    return cache_dir() / "latency" / f"{host.hexdigest()[:16]}.json"


def rest_ms(graph: Graph, layers: set[Node], inputs: Sequence[torch.Tensor]) -> float:
    """Milliseconds of every op outside `layers`, replayed on the inputs they see in a real run."""
    env = dict(zip(graph.inputs, inputs))
    calls = []
    with torch.no_grad():
        for node in graph.nodes:
            args = [None if v is None else (v.data if v.data is not None else env[v]) for v in node.inputs]
            opdef = get_op(node.op)
            env.update(zip(node.outputs, opdef.run(args, node.attrs)))
            if node not in layers:
                calls.append((opdef, args, node.attrs))
        with one_thread():
            return best_ms(lambda: [opdef.run(args, attrs) for opdef, args, attrs in calls], budget_s=0.5)

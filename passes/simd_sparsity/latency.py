"""Piecewise-linear latency model of SIMD-group sparse layers, measured on this host.

For every layer shape the sparse kernel is timed at a few densities (1, .75, .5, .25, .1 and 0,
random groups kept) and torch's dense layer once; between the points the latency is interpolated
linearly. A layer left dense (density 1) runs torch's kernel, so its latency is the dense time.
Tables are cached per host in `<cache>/latency/<host>.json` (the key hashes the CPU, the kernel
source and the torch version), so a model is measured once. Inside a model a layer's weights
and inputs are rarely still in the core's L2 cache when it runs (the layers before it went
through the cache), so every timed run starts after the L2 cache is flushed (`flush_l2`); the
table then predicts the layer as it runs in the model. Everything outside the candidate
layers (activations, pooling, additions, layers left dense for a reason) is measured once per
model by replaying those ops (`rest_ms`). Timings are the fastest of several runs on one thread,
measured as the thread's CPU time (`clock`): on an idle core that is the wall time, and on a
shared machine it leaves out the time slices other processes take.
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
clock = time.thread_time  # CPU seconds of the calling thread (torch on one thread runs inline)


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


def l2_bytes() -> int:
    """The L2 cache of one core (2 MiB when the system does not say)."""
    try:
        text = Path("/sys/devices/system/cpu/cpu0/cache/index2/size").read_text().strip().upper()
        return int(text[:-1]) * {"K": 1 << 10, "M": 1 << 20}[text[-1]] if text[-1] in "KM" else int(text)
    except (OSError, ValueError):
        return 2 << 20


_FLUSH: list[torch.Tensor] = []


def flush_l2() -> None:
    """Evict the core's L2 cache by reading a buffer four times its size (the L3 keeps its data)."""
    if not _FLUSH:
        _FLUSH.append(torch.ones(l2_bytes()))  # that many floats: four times the cache's bytes
    _FLUSH[0].sum()


def best_ms(fn: Callable[[], object], budget_s: float = 0.15, max_runs: int = 40, cold: bool = True) -> float:
    """Fastest of several runs (after two warm-ups), within about `budget_s` seconds; with `cold`,
    each run starts with the L2 cache flushed."""
    fn()
    fn()
    best, spent, runs = float("inf"), 0.0, 0
    while runs < 5 or (runs < max_runs and spent < budget_s):
        if cold:
            flush_l2()
        start = clock()
        fn()
        elapsed = clock() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return best * 1e3


def layer_key(node: Node, lanes: int) -> str:
    """Everything the kernel's and torch's time depend on: op, shapes, attributes, lanes."""
    shapes = ";".join("x".join(map(str, v.shape)) if v is not None else "-" for v in node.inputs)
    attrs = ",".join(f"{k}={v}" for k, v in sorted(node.attrs.items()))
    return f"{node.op}({shapes}){{{attrs}}}/lanes={lanes}"


def random_sparse_weight(layer: Candidate, lanes: int, density: float, gen: torch.Generator) -> torch.Tensor:
    """A random weight of the layer's shape with `density` of its SIMD groups kept, at random."""
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


def replay_ms(graph: Graph, inputs: Sequence[torch.Tensor], skip: set[Node] = frozenset()) -> float:
    """Milliseconds of every op but `skip`, replayed in graph order on the inputs they see in a real
    run: the replay goes through the caches as the model does."""
    env = dict(zip(graph.inputs, inputs))
    calls = []
    with torch.no_grad():
        for node in graph.nodes:
            args = [None if v is None else (v.data if v.data is not None else env[v]) for v in node.inputs]
            opdef = get_op(node.op)
            env.update(zip(node.outputs, opdef.run(args, node.attrs)))
            if node not in skip:
                calls.append((opdef, args, node.attrs))
        with one_thread():
            return best_ms(lambda: [opdef.run(args, attrs) for opdef, args, attrs in calls], budget_s=0.5,
                           cold=False)


@dataclass(frozen=True)
class ModelLatency:
    """A model's latency as `rest_ms + scale * (sum of its layers' table latencies)`.

    `rest_ms`: every op outside the candidate layers, replayed; `dense_ms`: the whole model
    replayed with every layer dense; `scale`: how much slower the dense layers ran in that replay
    than their tables say (cache traffic between layers), applied to every layer's prediction.
    """

    rest_ms: float
    dense_ms: float
    scale: float

    def predict(self, layers_ms: float) -> float:
        return self.rest_ms + self.scale * layers_ms


def model_latency(graph: Graph, tables: dict[Node, LatencyTable], inputs: Sequence[torch.Tensor]) -> ModelLatency:
    """Calibrate the layer tables of a model on one replay of the dense model."""
    rest = replay_ms(graph, inputs, set(tables))
    dense = replay_ms(graph, inputs)
    isolated = sum(t.dense_ms for t in tables.values())
    return ModelLatency(rest, dense, max(dense - rest, 0.0) / isolated if isolated > 0 else 1.0)

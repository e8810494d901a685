"""A memory bound checked from declared sizes before anything is allocated.

A 59-byte model can declare a 4 GB input and a ConstantOfShape of 16 GiB; generating example
inputs, interpreting the graph, or reading a calibration file would then allocate what the
file only claims. Each of those asks `check()` (or `check_graph()`) first and gets one clear
error instead. The bound is what `memory_limit()` sets for a block (the CLI's `--max-memory` does
so around a compile), else the `NNFORGE_MAX_MEMORY` environment variable, else `DEFAULT_LIMIT`.
Weights already held by the model are not counted: they exist before nnforge runs.
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

from compiler.errors import UserInputError

DEFAULT_LIMIT = 4 * 2**30
ENV_VAR = "NNFORGE_MAX_MEMORY"
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)\s*$", re.ASCII)
_LIMIT: ContextVar[int | None] = ContextVar("nnforge_max_memory", default=None)


def parse_size(text: str) -> int:
    """`4GiB`, `512MB`, `1000000` -> bytes."""
    m = _SIZE.match(str(text).lower())
    if m is None or m[2] not in _UNITS or len(m[1]) > 20:
        raise UserInputError(f"bad memory size '{text}'", hint="write a number of bytes with an optional unit, "
                                                              "e.g. 8GiB, 512MB, 2000000000")
    return int(float(m[1]) * _UNITS[m[2]])


def limit() -> int:
    """The bound in bytes: this block's (memory_limit), else the environment's, else the default."""
    value = _LIMIT.get()
    if value is not None:
        return value
    env = os.environ.get(ENV_VAR)
    return parse_size(env) if env else DEFAULT_LIMIT


@contextmanager
def memory_limit(nbytes: int | str | None) -> Iterator[None]:
    """Set the bound for a block; None keeps the current one."""
    token = _LIMIT.set(parse_size(nbytes) if isinstance(nbytes, str) else nbytes) if nbytes is not None else None
    try:
        yield
    finally:
        if token is not None:
            _LIMIT.reset(token)


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} B" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def check(nbytes: int, what: str) -> None:
    """Raise a clear error if allocating `nbytes` for `what` would pass the bound."""
    bound = limit()
    if nbytes > bound:
        raise UserInputError(f"{what} would need {format_bytes(nbytes)}, over the memory limit of "
                             f"{format_bytes(bound)}",
                             hint=f"if the machine has the memory, raise the limit: --max-memory, {ENV_VAR}, or "
                                  "compiler.memory.memory_limit(...) around compile(); else declare smaller shapes")


def tensor_bytes(shape, dtype) -> int:
    n = dtype.itemsize
    for d in shape:
        n *= int(d)
    return n


def peak_bytes(graph) -> tuple[int, str]:
    """The most bytes of inputs and intermediate values alive at once when the graph is
    interpreted (each value freed after its last use, as `interpret` does), and the value that
    sets the peak."""
    last_use = {}
    nodes = graph.nodes
    for i, node in enumerate(nodes):
        for v in node.inputs:
            if v is not None and v.producer is not None:
                last_use[v] = i
    keep = set(graph.outputs)
    live = sum(tensor_bytes(v.shape, v.dtype) for v in graph.inputs)
    peak, where = live, "the graph inputs"
    for i, node in enumerate(nodes):
        live += sum(tensor_bytes(v.shape, v.dtype) for v in node.outputs)
        if live > peak:
            peak, where = live, f"%{node.outputs[0].name} ({node.op})" if node.outputs else node.name
        for v in node.inputs:
            if v is not None and last_use.get(v) == i and v not in keep and v.producer is not None:
                live -= tensor_bytes(v.shape, v.dtype)
    return peak, where


def check_graph(graph, what: str = "running the graph") -> None:
    """Bound the memory `interpret(graph)` would take, before it runs."""
    peak, where = peak_bytes(graph)
    check(peak, f"{what} (peak at {where})")

"""Calibration data handed to passes that need real inputs (quantization, Taylor importance).

`compile(..., calibration_data=...)` puts it on the pass context (`ctx.calibration`); without it,
compile() hands the example inputs (or, lacking those, generated ones). A pass turns it into
validated batches with `batches(graph, data, limit)`, which rejects wrong shapes before the pass
does any work. Accepted data, for a graph whose inputs have static shapes [B, ...]:

* a tensor or numpy array: one input, B rows per batch (any multiple of B is split into batches);
* a list/tuple of those: one per batch, or (for a graph of n inputs) one stacked array per input;
* a dict (an .npz file): input name -> stacked array (or arrays in input order);
* any other iterable yielding batches in one of those forms (read up to `limit` batches).

`load_file(path)` reads `.npy`/`.npz` for the CLI's `--calibration-data`.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from compiler.array_files import load_arrays
from compiler.errors import UserInputError
from compiler.ir import Graph, TensorType
from compiler.printer import format_type

@dataclass(frozen=True)
class Calibration:
    data: Any
    source: str = "user data"          # "user data", "example inputs" or "generated inputs"


EAGER_LIMIT = 1024  # batches read from an iterable when validating up front


def validated(graph: Graph, data: Any, *, source: str = "user data") -> Calibration:
    """`data` checked against the graph's inputs (an iterable read, up to EAGER_LIMIT batches)
    right away, so wrong shapes fail before any pass runs."""
    return Calibration(batches(graph, data, EAGER_LIMIT), source)


def load_file(path: str | Path) -> Any:
    """An .npy array or an .npz archive (name -> array, in file order), checked by its headers
    before it is read (`compiler.array_files`)."""
    path = Path(path)
    if path.suffix not in (".npy", ".npz"):
        raise UserInputError(f"calibration data '{path}' must be a .npy or .npz file")
    return load_arrays(path)


def _tensor(item: Any) -> torch.Tensor | None:
    if isinstance(item, torch.Tensor):
        return item.detach()
    if isinstance(item, np.ndarray):
        if item.dtype.kind not in "biuf" or item.dtype.fields is not None:
            raise UserInputError(f"calibration data holds {item.dtype} values, not plain numbers")
        return torch.from_numpy(np.ascontiguousarray(item, dtype=item.dtype.newbyteorder("=")))
    return None


def _split(t: torch.Tensor, want: TensorType, where: str) -> list[torch.Tensor]:
    """`t` as batches of the graph's shape: equal, or a multiple of the batch along dim 0."""
    if tuple(t.shape) == want.shape:
        return [t]
    b = want.shape[0] if want.shape else 0
    if want.shape and t.dim() == len(want.shape) and tuple(t.shape[1:]) == want.shape[1:] and b \
            and t.shape[0] % b == 0 and t.shape[0] > 0:
        return list(t.split(b))
    raise UserInputError(f"calibration data {where} has shape {list(t.shape)}, but the graph input "
                         f"expects {format_type(want)}",
                         hint=f"give arrays of shape {list(want.shape)}, or k*{b} rows of "
                              f"{list(want.shape[1:])} to be split into batches")


def _cast(t: torch.Tensor, want: TensorType, where: str) -> torch.Tensor:
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise UserInputError(f"calibration data {where} holds {bad} NaN or infinite value(s)",
                             hint="calibration needs finite data; clean or drop those samples")
    if t.dtype == want.dtype:
        return t
    if t.dtype.is_floating_point == want.dtype.is_floating_point and t.dtype != torch.bool:
        return t.to(want.dtype)
    raise UserInputError(f"calibration data {where} is {t.dtype}, the graph input expects {want.dtype}")


def batches(graph: Graph, data: Any, limit: int | None = None) -> list[tuple[torch.Tensor, ...]]:
    """Validated calibration batches (tuples in graph input order), at most `limit` of them."""
    types = [v.type for v in graph.inputs]
    names = [v.name for v in graph.inputs]
    if not types:
        raise UserInputError("the graph has no inputs to calibrate")
    if _tensor(data) is not None:
        data = [data]
    columns = _columns(data, names)
    if columns is not None:  # one stacked array per input
        split = [_split(_cast(t, w, f"for %{n}"), w, f"for %{n}") for t, w, n in zip(columns, types, names)]
        if len({len(s) for s in split}) != 1:
            raise UserInputError("calibration arrays hold different numbers of batches: "
                                 + ", ".join(f"%{n}: {len(s)}" for n, s in zip(names, split)))
        out = list(zip(*split))
        return out[:limit] if limit else out
    out: list[tuple[torch.Tensor, ...]] = []
    iterator = iter(data) if not isinstance(data, dict) else iter([data])
    for index, item in enumerate(iterator):
        where = f"batch {index}"
        single = _tensor(item)
        if single is not None:
            if len(types) != 1:
                raise UserInputError(f"calibration {where} is one array, the graph has {len(types)} inputs",
                                     hint="give one tuple (or dict) of arrays per batch")
            out += [(b,) for b in _split(_cast(single, types[0], where), types[0], where)]
        else:
            tensors = _columns(item, names) if isinstance(item, dict) else \
                [_tensor(t) for t in item] if isinstance(item, (list, tuple)) else None
            if tensors is None or len(tensors) != len(types) or any(t is None for t in tensors):
                raise UserInputError(f"calibration {where} is not a tensor or a tuple of {len(types)} tensors")
            split = [_split(_cast(t, w, f"{where}, %{n}"), w, f"{where}, %{n}")
                     for t, w, n in zip(tensors, types, names)]
            out += list(zip(*split))
        if limit and len(out) >= limit:
            break
    if not out:
        raise UserInputError("calibration data is empty")
    return out[:limit] if limit else out


def _columns(data: Any, names: list[str]) -> list[torch.Tensor] | None:
    """One stacked tensor per graph input (a dict, or a tuple of n arrays for n > 1 inputs)."""
    if isinstance(data, dict):
        keys = list(data)
        ordered = [data[n] for n in names] if all(n in data for n in names) else [data[k] for k in keys]
        if len(ordered) != len(names):
            raise UserInputError(f"calibration data has {len(ordered)} arrays ({', '.join(keys)}), "
                                 f"the graph has {len(names)} inputs ({', '.join(names)})")
        return [_tensor(t) for t in ordered]
    if len(names) > 1 and isinstance(data, (list, tuple)) and len(data) == len(names) \
            and all(_tensor(t) is not None for t in data):
        return [_tensor(t) for t in data]
    return None


@contextmanager
def progress(task: str, total: int) -> Iterator[Callable[[], None]]:
    """`advance()` for one unit of `task`: a transient rich bar on an interactive stderr, else
    nothing (passes never print into logs or test output)."""
    if not sys.stderr.isatty():
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import Progress as Bar

    with Bar(console=Console(stderr=True), transient=True) as bar:
        handle = bar.add_task(task, total=total)
        yield lambda: bar.advance(handle)

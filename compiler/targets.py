"""The targets the current `compile()` lowers to, for passes that choose number formats themselves.

`compile()` sets them around the pipeline; `refusal(fmt)` says which target cannot carry a format
and why ("" when every target can, or none is known), so a search never picks a format the export
would then reject.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator, Sequence

from compiler.backend import Backend

_CURRENT: ContextVar[tuple[Backend, ...]] = ContextVar("nnforge_targets", default=())


@contextmanager
def compiling_for(backends: Sequence[Backend]) -> Iterator[None]:
    token = _CURRENT.set(tuple(backends))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def refusal(fmt: str) -> str:
    for backend in _CURRENT.get():
        why = backend.refuses(fmt)
        if why:
            return f"target {backend}: {why}"
    return ""

"""The state op rules work on: index arrays per value dim, and the index algebra of reshapes.

`ChannelState.dims(v)` is the list of index arrays of `v`'s dims (None for a dim of fixed indices). Weights
get theirs from the rules that read them: the first rule to couple a weight dim gives it its
partner's array (`couple`), and a rule that just reads one (`dims`) gives it fresh classes.

`merge` and `split` are the index algebra of reshape: merging dims gives each flat index the
class of its only channel coordinate (flatten into linear: every channel repeated over its
spatial block), or, with several channel coordinates (heads x head_dim), a derived class;
splitting a dim into several gives each new dim fresh coordinate classes and makes every old
index the derived class of its coordinates.
"""
from __future__ import annotations

import numpy as np

from compiler.ir import Graph, Node, Value
from passes.prune.classes import ChannelClasses


class _Unset:
    """A weight dim no rule has read yet."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


class ChannelState:
    """Analysis state: the classes, and the index arrays of every value's dims."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.classes = ChannelClasses()
        self.values: dict[Value, list] = {}

    # ---- reading and writing dims --------------------------------------------------------------
    def dims(self, v: Value) -> list[np.ndarray | None]:
        """Index arrays of `v`'s dims; unread weight dims get fresh classes (size-1 dims: None)."""
        dims = self._slots(v)
        for d, ids in enumerate(dims):
            if ids is UNSET:
                dims[d] = self.classes.fresh(v.shape[d]) if v.shape[d] > 1 else None
        return dims

    def _slots(self, v: Value) -> list:
        dims = self.values.get(v)
        if dims is None:
            if v.producer is not None:
                raise KeyError(f"%{v.name} used before its producer was analyzed")
            fill = UNSET if v.data is not None else None  # graph inputs: fixed
            dims = self.values[v] = [fill] * v.rank
        return dims

    def set(self, v: Value, dims: list) -> None:
        if len(dims) != v.rank:
            raise ValueError(f"rule gave %{v.name} {len(dims)} dims, it has {v.rank}")
        for ids, n in zip(dims, v.shape):
            if ids is not None and len(ids) != n:
                raise ValueError(f"rule gave a dim of %{v.name} {len(ids)} indices, it has {n}")
        self.values[v] = list(dims)

    def couple(self, v: Value, d: int, ids: np.ndarray | None) -> None:
        """Dim `d` of `v` must shrink exactly like `ids`."""
        slots = self._slots(v)
        if slots[d] is UNSET:
            slots[d] = ids
        else:
            self.classes.unify(slots[d], ids)

    def join(self, members: list[tuple[Value, int]], size: int) -> np.ndarray | None:
        """Couple dims (value, dim) of equal size; return their common index array."""
        ids = UNSET
        for v, d in members:  # the first already-known dim is the representative
            cur = self._slots(v)[d]
            if cur is UNSET:
                continue
            if ids is UNSET:
                ids = cur
            else:
                self.classes.unify(ids, cur)
        if ids is UNSET:
            ids = self.classes.fresh(size) if size > 1 else None
        for v, d in members:
            if self._slots(v)[d] is UNSET:
                self._slots(v)[d] = ids
        return ids

    def finish(self) -> None:
        """Weight dims no rule touched keep their size."""
        for dims in self.values.values():
            for d, ids in enumerate(dims):
                if ids is UNSET:
                    dims[d] = None


# ---- reshape algebra ------------------------------------------------------------------------------
def merge(cx: ChannelState, dims: list[np.ndarray | None], sizes: list[int]) -> np.ndarray | None:
    """Index array of the row-major flattening of `dims`."""
    live = [i for i, ids in enumerate(dims) if ids is not None]
    if not live:
        return None
    if len(live) == 1:
        i = live[0]
        shape = [1] * len(sizes)
        shape[i] = sizes[i]
        return np.broadcast_to(dims[i].reshape(shape), sizes).reshape(-1).copy()
    grid = np.indices(sizes).reshape(len(sizes), -1)
    columns = [dims[i][grid[i]].tolist() for i in live]
    derived = cx.classes.derived
    return np.array([derived(coords) for coords in zip(*columns)], dtype=np.int64)


def split(cx: ChannelState, flat: np.ndarray | None, sizes: list[int]) -> list[np.ndarray | None]:
    """Index arrays of the dims of a row-major reshape of `flat` to `sizes`."""
    live = [i for i, n in enumerate(sizes) if n > 1]
    out: list[np.ndarray | None] = [None] * len(sizes)
    if flat is None:
        return out
    if len(live) <= 1:
        if live:
            out[live[0]] = flat
        else:
            cx.classes.pin_all(flat, "squeezed dim")
        return out
    classes = cx.classes
    for i in live:
        out[i] = classes.fresh(sizes[i])
    grid = np.indices(sizes).reshape(len(sizes), -1)
    columns = [out[i][grid[i]].tolist() for i in live]
    for old, coords in zip(flat.tolist(), zip(*columns)):
        classes.union(old, classes.derived(coords))
    return out


# ---- helpers shared by the rules ---------------------------------------------------------------
def norm_dim(d: int, rank: int) -> int:
    return d % rank if rank else 0


def opaque(cx: ChannelState, node: Node) -> None:
    """The rule of an op without one: keep every channel it reads, fixed dims out."""
    for v in node.inputs:
        if v is not None:
            for ids in cx.dims(v):
                cx.classes.pin_all(ids, f"read by '{node.op}' ({node.name}), which has no pruning rule")
    for out in node.outputs:
        cx.set(out, [None] * out.rank)


def pin_spatial(cx: ChannelState, node: Node, dims: list) -> None:
    for ids in dims:  # spatial positions are mixed, never pruned
        cx.classes.pin_all(ids, f"spatial dim of {node.op} ({node.name})")

"""Channel classes: a union-find over individual channel indices.

Every index of every prunable tensor dim is labelled with a class id (an int; -1 means a *fixed*
index that can never be removed). Two indices that must be removed together are unified. A class
is one of

* **base**: a set of indices that go together (one conv output channel, everywhere it flows);
* **derived**: an index that exists in a dim built from several coordinates (a flattened
  `heads x head_dim` index, a grouped conv's `group x channel-in-group`): it is removed when any
  one of its coordinate classes is removed. Unifying two derived classes unifies their
  coordinates pairwise; unifying a base class with a derived one makes the base class derived;
* **pinned**: never removed (graph inputs and outputs, reductions over the dim, anything an op
  rule does not understand). Pinning a derived class pins its coordinates.

Union and pin run on small work lists, each link or pin happening once per class, so the whole
analysis stays linear in the number of channel indices.
"""
from __future__ import annotations

import numpy as np

FIXED = -1  # an index that is never removed (not a class)


class ChannelClasses:
    def __init__(self) -> None:
        self.parent: list[int] = []
        self.pinned: dict[int, str] = {}              # class -> reason (kept true for its root)
        self.coords: dict[int, tuple[int, ...]] = {}  # root -> coordinate classes (derived only)

    def __len__(self) -> int:
        return len(self.parent)

    # ---- creation ----------------------------------------------------------------------------
    def fresh(self, n: int) -> np.ndarray:
        """`n` new base classes, as an index array."""
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        return np.arange(start, start + n, dtype=np.int64)

    def derived(self, coords: tuple[int, ...]) -> int:
        """A new class removed whenever any of `coords` is removed (FIXED coords never are)."""
        cid = len(self.parent)
        self.parent.append(cid)
        self.coords[cid] = tuple(int(c) for c in coords)
        return cid

    # ---- queries ---------------------------------------------------------------------------------
    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def is_pinned(self, x: int) -> bool:
        return x < 0 or self.find(x) in self.pinned

    def roots(self) -> np.ndarray:
        """The root of every class, vectorized (pointer jumping)."""
        parent = np.asarray(self.parent, dtype=np.int64)
        while True:
            nxt = parent[parent]
            if np.array_equal(nxt, parent):
                return parent
            parent = nxt

    # ---- mutation -------------------------------------------------------------------------------
    def pin(self, x: int, reason: str) -> None:
        work = [x]
        while work:
            c = work.pop()
            if c < 0:
                continue
            r = self.find(c)
            if r in self.pinned:
                continue
            self.pinned[r] = reason
            work.extend(self.coords.get(r, ()))

    def pin_all(self, ids: np.ndarray | None, reason: str) -> None:
        if ids is None:
            return
        for c in np.unique(ids[ids >= 0]).tolist():
            self.pin(c, reason)

    def union(self, a: int, b: int) -> None:
        work = [(int(a), int(b))]
        while work:
            a, b = work.pop()
            if a < 0 or b < 0:
                if a >= 0 or b >= 0:
                    self.pin(max(a, b), "coupled with a fixed index")
                continue
            ra, rb = self.find(a), self.find(b)
            if ra == rb:
                continue
            ca, cb = self.coords.get(ra), self.coords.get(rb)
            if ca is None:  # the root keeps the coordinates, if any
                ra, rb, ca, cb = rb, ra, cb, ca
            self.parent[rb] = ra
            reason = self.pinned.get(ra) or self.pinned.get(rb)
            if cb is not None:
                del self.coords[rb]
                if len(ca) == len(cb):
                    work.extend(zip(ca, cb))
                else:  # two incompatible factorizations of one index: keep everything involved
                    reason = reason or "reshaped two incompatible ways"
                    for c in cb:
                        self.pin(c, reason)
            if reason is not None:
                self.pinned.pop(ra, None)
                self.pin(ra, reason)

    def unify(self, x: np.ndarray | None, y: np.ndarray | None) -> None:
        """Unify two index arrays elementwise (None is an all-fixed array)."""
        if x is y:
            return
        if x is None or y is None:
            self.pin_all(y if x is None else x, "coupled with a fixed index")
            return
        if x.shape != y.shape:
            raise ValueError(f"cannot couple dims of {len(x)} and {len(y)} indices")
        diff = np.nonzero(x != y)[0]
        for i in diff.tolist():
            self.union(int(x[i]), int(y[i]))

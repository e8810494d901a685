"""Dependency analysis: which channels of which tensors must be removed together.

One sweep over the graph in topological order applies each op's rule (rules.py), labelling every
index of every channel-carrying dim with a class (classes.py). Then:

1. graph outputs, annotated values (quantized, sparse: their per-index facts would go stale)
   and the layers named in `ignore` are pinned;
2. each derived class keeps one prunable coordinate, its outermost free one, so a flattened
   `heads x head_dim` index is removed with its whole head and a grouped conv loses whole groups;
3. every class resolves to a *unit*, the thing pruning removes (one channel of a coupled set, one
   attention head, one kv head with its query heads), or to -1 (kept);
4. every distinct index array is a *site*; units that occur in exactly the same sites form a
   *group*: their layers are coupled the same way, so ratios, rounding and "never empty a layer"
   are decided per group.

Each step is linear in the total number of channel indices.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from compiler.ir import Graph, Node, Value
from compiler.names import layer_names, name_matches
from passes.prune.classes import ChannelClasses
from passes.prune.context import ChannelState, opaque
from passes.prune.rules import rule_for

HEAD_POLICY = "inner coordinate (only whole heads and groups are pruned)"


@dataclass
class Site:
    """One index array, shared by the (value, dim) pairs in `members`."""

    ids: np.ndarray
    units: np.ndarray                       # unit of each index, -1 where the index is kept
    members: list[tuple[Value, int]] = field(default_factory=list)


@dataclass
class Group:
    index: int
    units: np.ndarray                       # unit ids, in order of first appearance
    sites: list[int]
    prunable: bool = False                  # touches a conv/linear-like weight and has 2+ units

    @property
    def size(self) -> int:
        return len(self.units)


@dataclass
class Analysis:
    graph: Graph
    dims: dict[Value, list[np.ndarray | None]]
    sites: list[Site]
    site_of: dict[tuple[Value, int], int]
    unit_group: np.ndarray                  # group index of each unit
    groups: list[Group]
    pinned: Counter                         # kept channel classes by reason
    fallbacks: list[str]                    # nodes whose rule failed (handled as unknown ops)

    @property
    def num_units(self) -> int:
        return len(self.unit_group)

    def weight_members(self, site: Site, params_only: bool = True) -> list[tuple[Value, int]]:
        return [(v, d) for v, d in site.members
                if v.data is not None and (v.is_param or not params_only)]


def analyze(graph: Graph, ignore: tuple[str, ...] = ()) -> Analysis:
    cx = ChannelState(graph)
    fallbacks = []
    for v in graph.inputs:
        cx.set(v, [None] * v.rank)
    for node in graph.nodes:
        rule = rule_for(node.op) or opaque
        try:
            rule(cx, node)
        except Exception as exc:  # a rule that cannot handle this node: keep everything it touches
            fallbacks.append(f"{node.name} ({node.op}): {exc}")
            opaque(cx, node)
    for v in graph.outputs:
        for ids in cx.dims(v):
            cx.classes.pin_all(ids, "graph output")
    for v, dims in list(cx.values.items()):  # annotations (quantization, sparsity) are per index
        if v.annotations or (v.producer is not None and v.producer.annotations):
            for ids in cx.dims(v):
                cx.classes.pin_all(ids, "annotated value (prune before quantize/sparsify)")
    for node in matching_nodes(graph, ignore):
        for v in [*node.inputs, *node.outputs]:
            if v is not None and (v.producer is node or v.data is not None):
                for ids in cx.dims(v):
                    cx.classes.pin_all(ids, f"ignored layer {node.name}")
    cx.finish()
    unit_of_class = _resolve(cx.classes)
    sites, site_of = _sites(cx.values, unit_of_class)
    unit_group, groups = _groups(sites)
    pinned = Counter(cx.classes.pinned.values())
    return Analysis(graph, cx.values, sites, site_of, unit_group, groups, pinned, fallbacks)


# ---- names ------------------------------------------------------------------------------------------
def matching_nodes(graph: Graph, patterns: tuple[str, ...]) -> list[Node]:
    if not patterns:
        return []
    return [n for n in graph.nodes if any(name_matches(p, layer_names(n)) for p in patterns)]


# ---- resolution -----------------------------------------------------------------------------------
def _bases(classes: ChannelClasses, r: int, memo: dict, active: set) -> list[int]:
    """Unpinned base classes a derived class `r` depends on, outermost first."""
    if r in memo:
        return memo[r]
    if r in active:  # a class derived from itself: keep it
        classes.pin(r, "cyclic reshape")
        return []
    active.add(r)
    out: list[int] = []
    for c in classes.coords[r]:
        if c < 0:
            continue
        rc = classes.find(c)
        if rc in classes.pinned:
            continue
        for b in (_bases(classes, rc, memo, active) if rc in classes.coords else [rc]):
            if b not in out:
                out.append(b)
    active.discard(r)
    memo[r] = out
    return out


def _resolve(classes: ChannelClasses) -> np.ndarray:
    """Unit (a root class id) of every class, -1 for kept ones."""
    derived = [r for r in classes.coords if classes.find(r) == r]
    memo: dict[int, list[int]] = {}
    for r in derived:  # one prunable coordinate per derived class: the outermost free one
        if r not in classes.pinned:
            for b in _bases(classes, r, memo, set())[1:]:
                classes.pin(b, HEAD_POLICY)
    roots = classes.roots()
    pinned = np.zeros(len(roots), dtype=bool)
    if classes.pinned:
        pinned[roots[np.fromiter(classes.pinned, dtype=np.int64)]] = True
    unit_of_root = np.arange(len(roots), dtype=np.int64)
    for r in derived:
        free = [b for b in _bases(classes, r, memo, set()) if not pinned[b]]
        unit_of_root[r] = free[0] if free and not pinned[r] else -1
    unit_of_root[pinned] = -1
    return unit_of_root[roots]


def _sites(values: dict[Value, list], unit_of_class: np.ndarray) -> tuple[list[Site], dict]:
    sites: list[Site] = []
    site_of: dict[tuple[Value, int], int] = {}
    by_array: dict[int, int] = {}
    for v, dims in values.items():
        for d, ids in enumerate(dims):
            if ids is None:
                continue
            index = by_array.get(id(ids))
            if index is None:
                units = np.where(ids >= 0, unit_of_class[np.maximum(ids, 0)], -1)
                index = by_array[id(ids)] = len(sites)
                sites.append(Site(ids, units))
            sites[index].members.append((v, d))
            site_of[(v, d)] = index
    # dense unit numbers, in order of first appearance
    used = np.concatenate([s.units for s in sites]) if sites else np.zeros(0, dtype=np.int64)
    used = used[used >= 0]
    uniq, first = np.unique(used, return_index=True)
    order = uniq[np.argsort(first)]
    lookup = np.full(int(uniq.max()) + 1 if len(uniq) else 1, -1, dtype=np.int64)
    lookup[order] = np.arange(len(order))
    for s in sites:
        s.units = np.where(s.units >= 0, lookup[np.maximum(s.units, 0)], -1)
    return sites, site_of


def _groups(sites: list[Site]) -> tuple[np.ndarray, list[Group]]:
    """Units that occur in exactly the same sites form one group (a 128-bit signature hash)."""
    n = 1 + max((int(s.units.max()) for s in sites if len(s.units)), default=-1)
    rng = np.random.default_rng(0x5EED)
    sig = np.zeros((n, 2), dtype=np.uint64)
    present: list[np.ndarray] = []
    for s in sites:
        units = np.unique(s.units[s.units >= 0])
        present.append(units)
        sig[units] ^= rng.integers(0, 2**63, size=2, dtype=np.uint64)
    _, first, inverse = np.unique(sig, axis=0, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    unit_group = rank[inverse.reshape(-1)] if n else np.zeros(0, dtype=np.int64)
    members = np.argsort(unit_group, kind="stable")
    bounds = np.searchsorted(unit_group[members], np.arange(len(first) + 1))
    groups = [Group(g, members[bounds[g]:bounds[g + 1]], []) for g in range(len(first))]
    for i, units in enumerate(present):
        for g in np.unique(unit_group[units]).tolist():
            groups[g].sites.append(i)
    for g in groups:
        g.prunable = g.size >= 2 and any(
            v.data is not None and v.is_param and v.rank >= 2
            for i in g.sites for v, _ in sites[i].members)
    return unit_group, groups

"""Readable views of the coupling groups: a text listing and a picture on the graph.

`describe_groups(graph)` lists, per group, every weight whose dims it touches (which indices,
and how many indices each unit occupies: a head of 16 channels, a channel flattened over 49
positions), the ops it flows through (residual adds, concats, reshapes, matmuls), and at the end
why the other channels are kept. `draw_groups(graph, path)` colours a drawing of the graph by
group (networkx + matplotlib, imported only when drawing).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from compiler.gcpause import gc_paused
from compiler.ir import Graph, Value
from compiler.ops import get_op
from passes.prune.groups import Analysis, Group, analyze

_QUIET = {"relu", "silu", "gelu", "sigmoid", "tanh", "clip", "hardswish", "hardsigmoid", "leaky_relu",
          "cast", "conv", "linear", "conv_transpose", "embedding", "batch_norm", "layer_norm",
          "group_norm", "prelu"}


@gc_paused()
def describe_groups(graph: Graph, analysis: Analysis | None = None) -> str:
    """The coupling groups of `graph` as text (what `nnforge inspect --groups` prints)."""
    a = analysis or analyze(graph)
    prunable = [g for g in a.groups if g.prunable]
    lines = [f"graph {graph.name}: {len(prunable)} prunable group(s), "
             f"{sum(g.size for g in prunable)} prunable unit(s)"]
    for g in a.groups:
        lines.append("")
        lines += _describe(a, g)
    if a.pinned:
        kept = ", ".join(f"{reason}: {n}" for reason, n in a.pinned.most_common())
        lines += ["", f"kept channel classes by reason: {kept}"]
    if a.fallbacks:
        lines += ["", "nodes handled as unknown ops (all their channels kept):"]
        lines += [f"  {f}" for f in a.fallbacks]
    return "\n".join(lines) + "\n"


def _describe(a: Analysis, g: Group) -> list[str]:
    rows, through, widest = [], Counter(), 1
    for i in g.sites:
        site = a.sites[i]
        hit = np.zeros(len(site.units), dtype=bool)
        hit[site.units >= 0] = a.unit_group[site.units[site.units >= 0]] == g.index
        where = _ranges(np.nonzero(hit)[0], len(hit))
        each = int(hit.sum()) // g.size
        widest = max(widest, each)
        for v, d in site.members:
            if v.data is not None:
                rows.append((_role(v, d), v.name, f"{where}{f'  ({each} per unit)' if each > 1 else ''}"))
            elif v.producer is not None and v.producer.op not in _QUIET:
                through[v.producer.op] += 1
    rows = _merge_rows(rows)
    kind = "heads" if widest > 1 and through.get("matmul") else "channels"
    state = "prunable" if g.prunable else "not prunable: no conv/linear weight" if g.size > 1 else "single unit"
    out = [f"group {g.index}: {g.size} {kind} ({state})"]
    width = max((len(name) for _, name, _ in rows), default=0)
    out += [f"  {role:<5} {name:<{width}}  {where}" for role, name, where in rows]
    if through:
        out.append("  via   " + ", ".join(f"{op} x{n}" if n > 1 else op for op, n in through.most_common()))
    return out


_ORDER = {"out": 0, "bias": 1, "norm": 2, "in": 4}


def _merge_rows(rows: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """One row per layer and role: `bn.{weight,bias}` instead of two rows."""
    merged: dict[tuple[str, str, str], list[str]] = {}
    for role, name, where in rows:
        stem, _, leaf = name.rpartition(".")
        merged.setdefault((role, stem or leaf, where), []).append(leaf if stem else "")
    out = []
    for (role, stem, where), leaves in merged.items():
        name = stem if leaves == [""] else f"{stem}.{leaves[0]}" if len(leaves) == 1 else \
            f"{stem}.{{{','.join(leaves)}}}"
        out.append((role, name, where))
    out.sort(key=lambda r: _ORDER.get(r[0], 3))
    return out


def _role(v: Value, d: int) -> str:
    """What dim `d` of a weight is to the layer reading it (out, in, rows of a table, bias)."""
    for user in v.users:
        index = next(i for i, x in enumerate(user.inputs) if x is v)
        layout = get_op(user.op).layout
        if layout is not None and index == layout.weight:
            axes = {layout.out_axis % v.rank: "out"}
            if layout.row_axis is not None:
                axes[layout.row_axis % v.rank] = "rows"
            if layout.in_axis is not None:
                axes[layout.in_axis % v.rank] = "in"
            return axes.get(d, f"dim{d}")
        if user.op in ("batch_norm", "layer_norm", "group_norm"):
            return "norm"
        if layout is not None and index == layout.bias:
            return "bias"
    return f"dim{d}"


def _ranges(idx: np.ndarray, n: int) -> str:
    if len(idx) == 0:
        return "-"
    breaks = np.nonzero(np.diff(idx) != 1)[0]
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]]) + 1
    if len(starts) > 4:
        return f"{len(idx)} of {n} indices in {len(starts)} runs"
    return "+".join(f"[{s}:{e}]" for s, e in zip(starts.tolist(), ends.tolist())) + f" of {n}"


def draw_groups(graph: Graph, path: str | Path, analysis: Analysis | None = None,
                title: str | None = None) -> Path:
    """Draw the graph with every edge and layer coloured by the group of its channels."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    a = analysis or analyze(graph)
    colors = plt.get_cmap("tab10")
    prunable = {g.index: k for k, g in enumerate(g for g in a.groups if g.prunable)}

    def group_of(v: Value) -> int | None:
        counts = Counter()
        for d in range(v.rank):
            i = a.site_of.get((v, d))
            if i is not None:
                units = a.sites[i].units
                counts.update(a.unit_group[units[units >= 0]].tolist())
        best = [g for g, _ in counts.most_common() if g in prunable]
        return best[0] if best else None

    g = nx.DiGraph()
    for node in graph.nodes:
        g.add_node(node.name, label=f"{node.op}\n{node.name}", group=group_of(node.outputs[0]))
    for v in graph.inputs:
        g.add_node(v.name, label=f"input\n{v.name}", group=None)
    for node in graph.nodes:
        for v in node.inputs:
            if v is not None and v.data is None:
                src = v.producer.name if v.producer is not None else v.name
                g.add_edge(src, node.name, group=group_of(v))
    pos = {}
    for layer, nodes in enumerate(nx.topological_generations(g)):
        for i, n in enumerate(sorted(nodes)):
            pos[n] = (1.8 * (i - (len(nodes) - 1) / 2), -1.5 * layer)
    fig, ax = plt.subplots(figsize=(6, 0.75 * len({y for _, y in pos.values()}) + 0.8))

    def color(group):
        return "#bbbbbb" if group is None else colors(prunable[group] % 10)
    for u, v, e in g.edges(data=True):  # an edge skipping layers (a shortcut) is drawn as an arc
        skip = pos[u][1] - pos[v][1] > 1.5 and pos[u][0] == pos[v][0]
        nx.draw_networkx_edges(g, pos, edgelist=[(u, v)], ax=ax, width=3, arrows=True, node_size=1100,
                               node_shape="s", edge_color=[color(e["group"])],
                               connectionstyle="arc3,rad=0.45" if skip else "arc3")
    nx.draw_networkx_nodes(g, pos, ax=ax, node_size=1100, node_shape="s",
                           node_color=[color(d["group"]) for _, d in g.nodes(data=True)])
    nx.draw_networkx_labels(g, pos, ax=ax, labels=nx.get_node_attributes(g, "label"), font_size=6)
    for gi, k in prunable.items():
        ax.plot([], [], color=colors(k % 10), lw=4, label=f"group {gi} ({a.groups[gi].size} ch)")
    ax.plot([], [], color="#bbbbbb", lw=4, label="kept (graph input/output)")
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    ax.set_title(title or f"coupling groups of {graph.name}", fontsize=9)
    ax.axis("off")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path

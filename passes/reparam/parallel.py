"""Parallel branches on one input whose outputs are summed -> one conv (RepVGG, ACNet, DBB, MobileOne).

    sum_i conv(x, W_i, b_i)  =  conv(x, sum_i embed(regroup(W_i)), sum_i b_i)

A sum (a tree of adds) is read into summands; each becomes a kernel on its base (`branch_of`:
conv, avg-pool, or identity, each with or without its BN); constants that add one amount per
channel join the bias. Summands on the same base, at least one of them a conv or avg-pool,
become one conv on the common grid of all their taps (`common_grid`: largest kernel, padding
and dilation reconciled, groups the gcd). Summands on other bases stay added to the result.
Refused, with the reason counted: mismatched strides, dilations or centres, a merged conv that
would cost more multiply-accumulates than the branches (unless `grow`), a dtype change.
"""
from __future__ import annotations

from compiler.ir import Graph, Node, Value
from compiler.rewrite import Rule
from passes.fold_bn import Affine, affine_of
from passes.fold_bn.affine import AFFINE_OPS
from passes.reparam.kernels import Branch, Kernel, branch_of
from passes.reparam.merge import merge_sum
from passes.reparam.patterns import (SUM_ROOT, Tally, as_vector, emit, erase_dead, is_sum_root, owner,
                                     per_channel, stem, sum_tree, sum_values)

FAMILY = "parallel"
COSTLY = ("conv", "avg_pool")  # kinds that do work; a group needs one (x + bn(x) stays as it is)


def _groups(graph: Graph, root: Node, tally: Tally):
    """Summands of the sum at `root`: (groups of branches by base, bias constants, the rest)."""
    out = root.outputs[0]
    leaves, adds = sum_tree(graph, root)
    by_base: dict[Value, list[tuple[Value, Branch]]] = {}
    consts: list[Value] = []
    rest: list[Value] = []
    for value, reader in leaves:
        if per_channel(value, out, 1):
            consts.append(value)
            continue
        branch = branch_of(graph, value, owner(value, reader, leaves)) if value.type == out.type else None
        if isinstance(branch, str):
            if len(leaves) > 1:
                tally.refuse(FAMILY, root.name, branch)
            branch = None
        if branch is None:
            rest.append(value)
        else:
            by_base.setdefault(branch.base, []).append((value, branch))
    return by_base, consts, rest, adds


def _merge(graph: Graph, root: Node, group: list[tuple[Value, Branch]], consts: list[Value],
           tally: Tally, grow: bool) -> Value | None:
    out = root.outputs[0]
    base = group[0][1].base
    kernels = [b.kernel for _, b in group]
    merged = merge_sum(kernels)
    if isinstance(merged, str):
        return tally.refuse(FAMILY, root.name, merged)
    if merged.output_shape(base.shape) != out.shape:
        return tally.refuse(FAMILY, root.name, "shape-mismatch")
    if base.dtype != out.dtype:
        return tally.refuse(FAMILY, root.name, "dtype-mismatch")
    if merged.cost() > sum(b.kernel.cost() for _, b in group if b.kind in COSTLY) and not grow:
        return tally.refuse(FAMILY, root.name, "more-macs")
    bias = merged.bias + sum(as_vector(c, out.shape[1]) for c in consts) if consts else merged.bias
    weights = [w for _, b in group for w in b.weights]
    name = stem(weights, [root]) + ".reparam"
    attrs = {"stride": merged.stride, "padding": merged.padding, "dilation": merged.dilation,
             "groups": merged.groups}
    result = emit(graph, "conv", base, merged.weight, bias, attrs, name=name, before=root,
                  source=root.source, dtype=out.dtype, is_param=any(w.is_param for w in weights))
    tally.fire(FAMILY, root.name)
    tally.fired[f"{FAMILY}.branches"] += len(group)
    return result


def rewrite(graph: Graph, root: Node, tally: Tally, grow: bool) -> bool:
    out = root.outputs[0]
    if out.rank < 3:
        return False
    by_base, consts, rest, adds = _groups(graph, root, tally)
    merged_any, summands, removable = False, [], list(adds)
    for group in by_base.values():
        result = None
        if len(group) > 1 and any(b.kind in COSTLY for _, b in group):
            result = _merge(graph, root, group, consts, tally, grow)
        if result is None:
            summands += [v for v, _ in group]
        else:
            merged_any, consts = True, []
            summands.insert(0, result)
            removable += [n for _, b in group for n in b.nodes]
    if not merged_any:
        return False
    total = sum_values(graph, summands + rest + consts, root, root.source)
    graph.replace_all_uses(out, total)
    erase_dead(graph, removable)
    return True


def rules(tally: Tally, grow: bool) -> list[Rule]:
    return [Rule(FAMILY, SUM_ROOT, lambda m: rewrite(m.graph, m.node, tally, grow) or None)]


def joins_sum(graph: Graph, value: Value, base: Value, kernel: Kernel) -> bool:
    """Whether `value` (through per-channel maps) is a summand next to a conv on `base` at least
    as large as `kernel`: merging into it later costs nothing extra."""
    while len(value.users) == 1 and value not in graph.outputs and value.users[0].op in AFFINE_OPS:
        aff = affine_of(value.users[0])
        if not isinstance(aff, Affine) or aff.x is not value:
            break
        value = value.users[0].outputs[0]
    if len(value.users) != 1 or value.users[0].op != "add":
        return False
    root = value.users[0]
    while not is_sum_root(graph, root):
        root = root.outputs[0].users[0]
    leaves, _ = sum_tree(graph, root)
    for leaf, reader in leaves:
        if leaf is value or leaf.type != value.type:
            continue
        branch = branch_of(graph, leaf, owner(leaf, reader, leaves))
        if isinstance(branch, Branch) and branch.base is base and branch.kind == "conv" and \
                all(k >= m for k, m in zip(branch.kernel.size, kernel.size)):
            return True
    return False

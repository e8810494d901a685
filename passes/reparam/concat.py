"""Convs over the same input whose outputs are concatenated along channels -> one conv.

    cat([conv(x, W_1, b_1), ..., conv(x, W_n, b_n)], dim=1)  =  conv(x, cat(W_i'), cat(b_i))

Each run of consecutive concatenated inputs that are convs (with or without their BN) on the
same base merges; other inputs keep their place. Kernels are put on one grid like parallel
branches (W_i' is W_i zero-padded to the common size). Refused: grouped convs (stacking groups
is no grouped conv), mismatched strides / dilations / centres, and a merge that costs more
multiply-accumulates than the convs it replaces (different kernel sizes) unless `grow`.
"""
from __future__ import annotations

from compiler.ir import Graph, Node, Value
from compiler.pattern import Pattern
from compiler.rewrite import Rule
from passes.reparam.kernels import Branch, branch_of
from passes.reparam.merge import merge_stack
from passes.reparam.patterns import Tally, emit, erase_dead, stem

FAMILY = "concat"


def _runs(graph: Graph, node: Node) -> list[list[tuple[int, Branch]]]:
    """Maximal runs (length >= 2) of consecutive conv inputs on one base."""
    runs: list[list[tuple[int, Branch]]] = []
    current: list[tuple[int, Branch]] = []
    for i, value in enumerate(node.inputs):
        once = sum(1 for v in node.inputs if v is value) == 1
        branch = branch_of(graph, value, node if once else None)
        if not isinstance(branch, Branch) or branch.kind != "conv":
            branch = None
        if branch is not None and current and branch.base is current[-1][1].base:
            current.append((i, branch))
            continue
        if len(current) > 1:
            runs.append(current)
        current = [(i, branch)] if branch is not None else []
    if len(current) > 1:
        runs.append(current)
    return runs


def _merge(graph: Graph, node: Node, run: list[tuple[int, Branch]], tally: Tally, grow: bool) -> Value | None:
    key = f"{node.name}[{run[0][0]}]"
    merged = merge_stack([b.kernel for _, b in run])
    if isinstance(merged, str):
        return tally.refuse(FAMILY, key, merged)
    base = run[0][1].base
    parts = [node.inputs[i] for i, _ in run]
    shape = merged.output_shape(base.shape)
    if shape[2:] != parts[0].shape[2:] or shape[0] != parts[0].shape[0]:
        return tally.refuse(FAMILY, key, "shape-mismatch")
    if any(p.dtype != base.dtype for p in parts):
        return tally.refuse(FAMILY, key, "dtype-mismatch")
    if merged.cost() > sum(b.kernel.cost() for _, b in run) and not grow:
        return tally.refuse(FAMILY, key, "more-macs")
    weights = [w for _, b in run for w in b.weights]
    attrs = {"stride": merged.stride, "padding": merged.padding, "dilation": merged.dilation,
             "groups": merged.groups}
    result = emit(graph, "conv", base, merged.weight, merged.bias, attrs, name=stem(weights, [node]) + ".reparam",
                  before=node, source=node.source, dtype=base.dtype, is_param=any(w.is_param for w in weights))
    tally.fire(FAMILY, key)
    tally.fired[f"{FAMILY}.convs"] += len(run)
    return result


def rewrite(graph: Graph, node: Node, tally: Tally, grow: bool) -> bool:
    out = node.outputs[0]
    if out.rank < 3 or node.attrs["dim"] % out.rank != 1:
        return False
    inputs: list[Value] = list(node.inputs)
    removable: list[Node] = []
    for run in reversed(_runs(graph, node)):  # from the back, so earlier indices stay valid
        result = _merge(graph, node, run, tally, grow)
        if result is not None:
            first, last = run[0][0], run[-1][0]
            inputs[first:last + 1] = [result]
            removable += [n for _, b in run for n in b.nodes]
    if len(inputs) == len(node.inputs):
        return False
    if len(inputs) == 1:
        new = inputs[0]
    else:
        new = graph.create_node("concat", inputs, {"dim": node.attrs["dim"]}, name=node.name,
                                source=node.source, before=node).outputs[0]
    graph.replace_all_uses(out, new)
    graph.erase_node(node)
    erase_dead(graph, removable)
    return True


def rules(tally: Tally, grow: bool) -> list[Rule]:
    return [Rule(FAMILY, Pattern("concat"), lambda m: rewrite(m.graph, m.node, tally, grow) or None)]

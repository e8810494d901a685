"""Deterministic text form of a graph, for people, golden tests and reproducers.

    graph tiny(%x: f32[1,3,8,8]) {
      %conv.weight: f32[4,3,3,3] = weight
      %conv: f32[1,4,8,8] = conv(%x, %conv.weight, None) {dilation=[1,1], groups=1, padding=[1,1], stride=[1,1]}  # conv
      return %conv
    }
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import torch

from compiler.dtypes import short_name
from compiler.ir import Graph, Node, TensorType, Value

INLINE_CONSTANT_LIMIT = 8
_BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*", re.ASCII)
_KEYWORDS = {"graph", "return", "weight", "constant", "None", "True", "False", "inf", "nan"}


@lru_cache(maxsize=4096)
def format_type(t: TensorType) -> str:
    return f"{short_name(t.dtype)}[{','.join(str(d) for d in t.shape)}]"


def format_attr(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(format_attr(v) for v in value) + "]"
    if isinstance(value, torch.dtype):
        return short_name(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def format_graph_name(name: str) -> str:
    """The name bare when it is a plain word, else as a quoted string (any text parses back)."""
    return name if _BARE_NAME.fullmatch(name) and name not in _KEYWORDS else json.dumps(name)


def _annotations(item: Value | Node) -> str:
    return "".join(f" @{a.describe()}" for a in item.annotations.values())


def _typed(v: Value) -> str:
    return f"%{v.name}: {format_type(v.type)}"


def format_weight(w: Value) -> str:
    if w.type.numel <= INLINE_CONSTANT_LIMIT and w.data is not None:
        values = w.data.detach().flatten().tolist()
        return f"{_typed(w)} = constant {format_attr(values) if w.type.shape else format_attr(values[0])}"
    return f"{_typed(w)} = {'weight' if w.is_param else 'constant'}"


def format_node(node: Node) -> str:
    outs = ", ".join(_typed(v) + _annotations(v) for v in node.outputs)
    args = ", ".join("None" if v is None else f"%{v.name}" for v in node.inputs)
    attrs = ", ".join(f"{k}={format_attr(v)}" for k, v in sorted(node.attrs.items()))
    text = f"{outs} = {node.op}({args})"
    if attrs:
        text += f" {{{attrs}}}"
    text += _annotations(node)
    if node.source:
        text += f"  # {node.source}"
    return text


def print_graph(graph: Graph, *, weights: bool = True) -> str:
    """The whole graph as text. `weights=False` leaves out the weight declarations."""
    params = ", ".join(_typed(v) + _annotations(v) for v in graph.inputs)
    lines = [f"graph {format_graph_name(graph.name)}({params}) {{"]
    if weights:
        lines += [f"  {format_weight(w)}{_annotations(w)}" for w in graph.weights.values()]
    lines += [f"  {format_node(n)}" for n in graph.nodes]
    lines.append("  return " + ", ".join(f"%{v.name}" for v in graph.outputs))
    lines.append("}")
    return "\n".join(lines) + "\n"

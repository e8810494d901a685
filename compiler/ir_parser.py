"""Parses the printed IR back into a Graph, so reproducers and golden files can be run.

The text carries everything but large weight tensors, which come from a mapping (the
`.safetensors` file written next to a reproducer). Annotations parse back through the tag
registry of `compiler.annotations`.
"""
from __future__ import annotations

import ast
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import torch
from lark import Lark, Transformer, UnexpectedInput
from lark.exceptions import VisitError

from compiler.annotations import ANNOTATION_TAGS, Annotation
from compiler import sparse  # noqa: F401  (registers @sparsity, as compiler.ops registers @quant)
from compiler.dtypes import SHORT_NAMES
from compiler.errors import IRError
from compiler.ir import Graph, TensorType
from compiler.nesting import MAX_NESTING, line_column, nesting_depth
from compiler.ops import get_op
from compiler import tiling  # noqa: F401  (registers the @tiling annotation tag)
from compiler.verifier import verify

DTYPES = {short: dtype for dtype, short in SHORT_NAMES.items()}
WORDS = {"True": True, "False": False, "None": None, "inf": math.inf, "nan": math.nan}
MAX_DIM, MAX_ELEMENTS = 2**48, 2**56  # declared shapes stay far inside int64 arithmetic


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark((Path(__file__).with_name("ir_text.lark")).read_text(), parser="lalr")


class _Tree(Transformer):
    def number(self, items):
        text = str(items[0])
        return float(text) if any(c in text for c in ".eEn") else int(text)

    def string(self, items):
        return json.loads(str(items[0]))  # the printer writes strings as JSON

    def neg_inf(self, _):
        return -math.inf

    def word(self, items):
        text = str(items[0])
        if text.lstrip("-") in WORDS and text.startswith("-"):
            return -WORDS[text[1:]]
        return WORDS.get(text, text)

    def list(self, items):
        return tuple(i for i in items if i is not None) if items != [None] else ()

    def none(self, _):
        return None

    def value_ref(self, items):
        return str(items[0])[1:]

    def tensor_type(self, items):
        dtype = DTYPES.get(str(items[0]))
        if dtype is None:
            raise IRError(f"unknown dtype '{items[0]}'", hint=f"known: {', '.join(DTYPES)}")
        dims = tuple(int(d) for d in items[1:] if d is not None)
        if any(d > MAX_DIM for d in dims) or math.prod(dims) > MAX_ELEMENTS:
            raise IRError(f"shape {list(dims)} is too large", hint=f"dims up to {MAX_DIM}, {MAX_ELEMENTS} elements")
        return TensorType(dims, dtype)

    def annotation(self, items):
        return _annotation(str(items[0]))

    def typed(self, items):
        return (items[0], items[1], [a for a in items[2:]])

    def attr(self, items):
        return (str(items[0]), items[1])

    def attrs(self, items):
        return dict(i for i in items if i is not None)


def _annotation(text: str) -> Annotation:
    tag, _, body = text[1:].partition("<")
    cls = ANNOTATION_TAGS.get(tag)
    if cls is None:
        raise IRError(f"unknown annotation '@{tag}'")
    call = ast.parse(f"f({body[:-1]})", mode="eval").body
    return cls(**{kw.arg: ast.literal_eval(_SpecialFloats().visit(kw.value)) for kw in call.keywords})


class _SpecialFloats(ast.NodeTransformer):
    """`inf` and `nan` as printed by repr() inside annotations become float constants."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.Constant(WORDS[node.id]) if node.id in ("inf", "nan") else node


def parse_graph(text: str, weights: Mapping[str, torch.Tensor] | None = None) -> Graph:
    """Rebuild a graph from its printed text; weight data not inlined comes from `weights`."""
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    depth, offset = nesting_depth(body)
    if depth > MAX_NESTING:
        line, column = line_column(body, offset)
        raise IRError(f"IR text nests lists {depth} deep at line {line}, column {column}; at most "
                      f"{MAX_NESTING} are read")
    try:
        tree = _Tree().transform(_parser().parse(body + "\n"))
    except UnexpectedInput as exc:
        raise IRError(f"cannot parse IR text at line {exc.line}, column {exc.column}:\n"
                      f"{exc.get_context(body).rstrip()}") from None
    except VisitError as exc:  # a bad dtype or annotation inside an otherwise well-formed line
        if isinstance(exc.orig_exc, IRError):
            raise exc.orig_exc from None
        raise IRError(f"cannot read IR text: {exc.orig_exc}") from None
    header, *lines = [c for c in tree.children if c is not None]
    returns = [c for c in lines if isinstance(c, str)]
    lines = [c for c in lines if not isinstance(c, str)]
    name = header.children[0]
    try:
        graph = Graph(json.loads(str(name)) if name.type == "ESCAPED_STRING" else str(name))
    except ValueError as exc:
        raise IRError(f"bad graph name {str(name)[:60]}: {exc}") from None
    env = {}
    for name, t, notes in [c for c in header.children[1:] if c is not None]:
        env[name] = _named(graph, graph.add_input(name, t), name, notes)
    for line in lines:
        if line.data == "weight":
            env.update(_weight(graph, line.children, weights or {}))
        else:
            env.update(_node(graph, line.children, env))
    missing = [r for r in returns if r not in env]
    if missing:
        raise IRError(f"return names undefined values: {', '.join('%' + m for m in missing)}")
    graph.outputs = [env[r] for r in returns]
    verify(graph)
    return graph


def _named(graph: Graph, value, name: str, annotations):
    try:
        graph.rename(value, name)
    except ValueError:
        raise IRError(f"%{name} is defined twice", hint="every value name is defined once") from None
    for a in annotations:
        value.annotate(a)
    return value


def _weight(graph: Graph, children, weights: Mapping[str, torch.Tensor]):
    (name, t, annotations), kind, *rest = children
    literal = [r for r in rest if not isinstance(r, Annotation)]
    annotations = annotations + [r for r in rest if isinstance(r, Annotation)]
    if literal:
        data = _literal_tensor(name, literal[0], t)
    elif name in weights:
        data = weights[name]
    else:
        raise IRError(f"no data for weight %{name}", hint="give the .safetensors file written with the IR")
    if TensorType.of(data) != t:
        raise IRError(f"weight %{name} is typed {t} but its data is {TensorType.of(data)}")
    value = graph.add_weight(name, data, is_param=str(kind) == "weight")
    graph.weights.pop(value.name)
    _named(graph, value, name, annotations)
    graph.weights[name] = value
    return {name: value}


def _literal_tensor(name: str, literal: Any, t: TensorType) -> torch.Tensor:
    """An inline constant: a number, or a flat list of exactly numel numbers."""
    items = literal if isinstance(literal, tuple) else (literal,)
    if not all(isinstance(x, (bool, int, float)) for x in items):
        raise IRError(f"constant %{name} must list plain numbers, got {format_literal(literal)}")
    if len(items) != t.numel or (not t.shape and isinstance(literal, tuple)):
        raise IRError(f"constant %{name} is typed {list(t.shape)} ({t.numel} values) but lists {len(items)}")
    try:
        return torch.tensor(items, dtype=t.dtype).reshape(t.shape)
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise IRError(f"constant %{name} cannot hold {format_literal(literal)} as {t.dtype}: {exc}") from None


def format_literal(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _node(graph: Graph, children, env):
    outs = [c for c in children if isinstance(c, tuple)]
    rest = [c for c in children if not isinstance(c, tuple)]
    op = str(rest[0])
    args, attrs, annotations, source = [], {}, [], ""
    for item in rest[1:]:
        if isinstance(item, dict):
            attrs = item
        elif isinstance(item, Annotation):
            annotations.append(item)
        elif hasattr(item, "type") and item.type == "SOURCE":
            source = str(item)[1:].strip()
        else:
            args.append(item)
    if args == [None] and not get_op(op).inputs:
        args = []
    undefined = [a for a in args if a is not None and a not in env]
    if undefined:
        raise IRError(f"%{outs[0][0]} = {op}(...) uses undefined values: {', '.join('%' + u for u in undefined)}")
    node = graph.create_node(op, [None if a is None else env[a] for a in args], _attrs(op, attrs),
                             name=outs[0][0] if len(outs) == 1 else outs[0][0].rsplit(".", 1)[0],
                             source=source, out_types=[t for _, t, _ in outs])
    for a in annotations:
        node.annotate(a)
    return {name: _named(graph, value, name, anns) for value, (name, _, anns) in zip(node.outputs, outs)}


def _attrs(op: str, attrs: dict[str, Any]) -> dict[str, Any]:
    schema = get_op(op).attrs
    out = {}
    for key, value in attrs.items():
        kind = schema[key].kind if key in schema else ""
        if kind.rstrip("?") == "dtype" and isinstance(value, str):
            value = DTYPES.get(value, value)
        out[key] = value
    return out

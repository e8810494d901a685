"""Parsing and printing pipelines.

Text (inline or a file) parses to a `Pipeline` of pass instances and an optional target. Printing
a pipeline gives text that parses back to an equal pipeline.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from lark import Lark, Transformer, UnexpectedInput

from compiler import options
from compiler.backend import Backend, get_backend
from compiler.errors import PipelineError
from compiler.passes import Pass, get_pass


@dataclass(frozen=True)
class Pipeline:
    passes: tuple[Pass, ...] = ()
    target: Backend | None = None

    def __str__(self) -> str:
        return ",".join(str(p) for p in self.passes)

    def to_file_text(self) -> str:
        lines = [f"target {self.target}"] if self.target is not None else []
        return "\n".join(lines + [str(p) for p in self.passes]) + "\n"


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = (Path(__file__).with_name("pipeline.lark")).read_text()
    return Lark(grammar, parser="lalr", maybe_placeholders=False, propagate_positions=True)


class _ToItems(Transformer):
    def number(self, items):
        text = str(items[0])
        return float(text) if any(c in text for c in ".eE") else int(text)

    def string(self, items):
        return ast.literal_eval(str(items[0]))

    def word(self, items):
        text = str(items[0])
        return {"true": True, "false": False, "none": None}.get(text, text)

    def list(self, items):
        return list(items)

    def mapping(self, items):
        return dict(items)

    def option(self, items):
        return (str(items[0]), items[1])

    def options(self, items):
        opts: dict[str, Any] = {}
        for key, value in items:
            if key in opts:
                raise PipelineError(f"option '{key}' given twice")
            opts[key] = value
        return opts

    def pass_(self, items):
        return ("pass", items[0], items[1] if len(items) > 1 else {})

    def target(self, items):
        return ("target", items[0], items[1] if len(items) > 1 else {})

    def start(self, items):
        return list(items)


def parse_pipeline(text: str, *, source: str = "<pipeline>") -> Pipeline:
    """Parse inline or file-form pipeline text into pass instances and an optional target."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        context = exc.get_context(text, span=60).rstrip("\n")
        raise PipelineError(f"syntax error in {source} at line {exc.line}, column {exc.column}:\n{context}",
                            hint="a pipeline is `pass{option=value,...}` items separated by commas "
                                 "or newlines") from None
    passes: list[Pass] = []
    target: Backend | None = None
    for kind, name_token, opts in _ToItems().transform(tree):
        name = str(name_token)
        where = f"{source}:{getattr(name_token, 'line', '?')}:{getattr(name_token, 'column', '?')}"
        try:
            if kind == "target":
                if target is not None:
                    raise PipelineError("a pipeline names at most one target")
                target = options.build(get_backend(name), "target", name, opts)
            else:
                passes.append(options.build(get_pass(name), "pass", name, opts))
        except PipelineError as exc:
            raise PipelineError(exc.what, where=where, hint=exc.hint) from None
    return Pipeline(tuple(passes), target)


def parse_target(text: str) -> Backend:
    """One target spec as the command line and compile() take it: `onnx` or `onnx{opset=21}`."""
    target = parse_pipeline(f"target {text.strip()}", source=f"target '{text.strip()}'").target
    assert target is not None
    return target


def split_targets(text: str) -> list[str]:
    """`onnx{opset=21,quant=exact},pytorch` -> its target specs (commas inside braces stay)."""
    items, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    return [item.strip() for item in items + [current] if item.strip()]


def load_pipeline(spec: str | Path) -> Pipeline:
    """A pipeline from a file path (when one exists) or from inline text."""
    path = Path(spec) if isinstance(spec, Path) or "\n" not in str(spec) else None
    if path is not None and path.suffix in (".nnf", ".pipeline", ".txt") and not path.is_file():
        raise PipelineError(f"pipeline file not found: {path}")
    if path is not None and path.is_file():
        return parse_pipeline(path.read_text(), source=str(path))
    return parse_pipeline(str(spec))

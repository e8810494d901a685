"""Parsing and printing pipelines.

Text (inline or a file) parses to a `Pipeline` of pass instances and an optional target. Printing
a pipeline gives text that parses back to an equal pipeline. `parse_items` gives the raw items
(with `SweepAxis` values left in place) to the sweep spec parser, `compiler.sweep.spec`. Whether
`--pipeline X` names a file is decided by its syntax, never by trying X as a path; nesting depth,
number length and file size are bounded before anything recursive or large runs, so every bad
input is one PipelineError.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from lark import Lark, Transformer, UnexpectedInput
from lark.exceptions import VisitError

from compiler import options
from compiler.backend import Backend, get_backend
from compiler.errors import NNForgeError, PipelineError
from compiler.nesting import MAX_NESTING, line_column, nesting_depth
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


@dataclass(frozen=True)
class SweepAxis:
    """`sweep[v1, v2, ...]` as an option's value: the values one axis of a sweep takes."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Item:
    """One parsed pipeline item before it is built: a pass or a target, its raw options, and where
    it is in the text."""

    kind: str                # "pass" or "target"
    name: str
    options: dict[str, Any]
    where: str


FILE_SUFFIXES = (".nnf", ".pipeline", ".txt")
MAX_FILE_BYTES = 2**20
MAX_NUMBER_CHARS = 40
_INLINE_SYNTAX = re.compile(r'[{}\[\]=,"\n]')


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = (Path(__file__).with_name("pipeline.lark")).read_text()
    return Lark(grammar, parser="lalr", maybe_placeholders=False, propagate_positions=True)


class _ToItems(Transformer):
    def number(self, items):
        text = str(items[0])
        if len(text) > MAX_NUMBER_CHARS:
            raise PipelineError(f"number '{text[:20]}...' at line {items[0].line} has {len(text)} characters; "
                                f"at most {MAX_NUMBER_CHARS} are read")
        return float(text) if any(c in text for c in ".eE") else int(text)

    def string(self, items):
        try:
            return json.loads(str(items[0]))
        except ValueError as exc:
            raise PipelineError(f"bad string {str(items[0])[:40]} at line {items[0].line}: {exc}",
                                hint='strings use JSON escapes: \\" \\\\ \\n \\u00e9') from None

    def word(self, items):
        text = str(items[0])
        return {"true": True, "false": False, "none": None}.get(text, text)

    def list(self, items):
        _no_nested_sweep(items)
        return list(items)

    def sweep(self, items):
        _no_nested_sweep(items)
        if not items:
            raise PipelineError("sweep[] has no values", hint="write the values the axis takes: sweep[0.3, 0.5]")
        return SweepAxis(tuple(items))

    def mapping(self, items):
        _no_nested_sweep([value for _, value in items])
        return self.options(items)

    def option(self, items):
        return (items[0], items[1])

    def options(self, items):
        opts: dict[str, Any] = {}
        for key, value in items:
            if str(key) in opts:
                raise PipelineError(f"option '{key}' given twice (line {key.line}, column {key.column})")
            opts[str(key)] = value
        return opts

    def pass_(self, items):
        return ("pass", items[0], items[1] if len(items) > 1 else {})

    def target(self, items):
        return ("target", items[0], items[1] if len(items) > 1 else {})

    def start(self, items):
        return list(items)


def _no_nested_sweep(values) -> None:
    if any(isinstance(v, SweepAxis) for v in values):
        raise PipelineError("sweep[...] is a whole option value, not part of a list or mapping",
                            hint="sweep over whole values instead: skip=sweep[[fc], [fc, conv1]]")


def parse_items(text: str, *, source: str = "<pipeline>") -> list[Item]:
    """The items of pipeline text, options as parsed values (sweep axes included), not yet built."""
    depth, offset = nesting_depth(text)
    if depth > MAX_NESTING:
        line, column = line_column(text, offset)
        raise PipelineError(f"{source} nests options {depth} deep at line {line}, column {column}; "
                            f"at most {MAX_NESTING} levels are read")
    try:
        tree = _parser().parse(text)
        raw = _ToItems().transform(tree)
    except UnexpectedInput as exc:
        context = exc.get_context(text, span=60).rstrip("\n")
        raise PipelineError(f"syntax error in {source} at line {exc.line}, column {exc.column}:\n{context}",
                            hint="a pipeline is `pass{option=value,...}` items separated by commas "
                                 "or newlines") from None
    except VisitError as exc:
        if isinstance(exc.orig_exc, NNForgeError):
            line = getattr(exc.obj, "meta", None)
            where = f"{source}:{line.line}:{line.column}" if line is not None and not line.empty else source
            raise PipelineError(exc.orig_exc.what, where=where, hint=exc.orig_exc.hint) from None
        raise PipelineError(f"cannot read {source}: {exc.orig_exc}") from None  # a value Python cannot hold
    return [Item(kind, str(name), opts, f"{source}:{getattr(name, 'line', '?')}:{getattr(name, 'column', '?')}")
            for kind, name, opts in raw]


def build_item(item: Item) -> Pass | Backend:
    """The pass or target instance an item names (options type-checked)."""
    try:
        cls = get_backend(item.name) if item.kind == "target" else get_pass(item.name)
        return options.build(cls, item.kind, item.name, item.options)
    except PipelineError as exc:
        raise PipelineError(exc.what, where=item.where, hint=exc.hint) from None


def parse_pipeline(text: str, *, source: str = "<pipeline>") -> Pipeline:
    """Parse inline or file-form pipeline text into pass instances and an optional target."""
    passes: list[Pass] = []
    target: Backend | None = None
    for item in parse_items(text, source=source):
        for key, value in item.options.items():
            if isinstance(value, SweepAxis):
                raise PipelineError(f"{item.kind} '{item.name}': option '{key}' is a sweep axis", where=item.where,
                                    hint="a sweep runs with `nnforge sweep MODEL --pipeline SPEC -o DIR`; "
                                         "here give one value")
        if item.kind == "target":
            if target is not None:
                raise PipelineError("a pipeline names at most one target", where=item.where)
            target = build_item(item)
        else:
            passes.append(build_item(item))
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
    """A pipeline from a file or from inline text. Text names a file when it has no pipeline
    syntax (braces, brackets, `=`, commas, quotes, newlines) and ends in .nnf/.pipeline/.txt or
    holds a path separator; anything else is inline text."""
    if isinstance(spec, Path) or names_a_file(spec):
        return parse_pipeline(_read_file(Path(spec)), source=str(spec))
    return parse_pipeline(str(spec))


def names_a_file(text: str) -> bool:
    text = text.strip()
    return not _INLINE_SYNTAX.search(text) and (text.endswith(FILE_SUFFIXES) or "/" in text or "\\" in text)


def _read_file(path: Path) -> str:
    try:
        if not path.is_file():
            raise PipelineError(f"pipeline file not found: {path}")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise PipelineError(f"pipeline file {path} is over {MAX_FILE_BYTES} bytes")
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise PipelineError(f"cannot read pipeline file {str(path)[:200]}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PipelineError(f"pipeline file {path} is not UTF-8 text (byte {exc.start})") from None

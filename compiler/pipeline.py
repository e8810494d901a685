"""Parsing and printing pipelines.

Text (inline or a file) parses to a `Pipeline` of pass instances and an optional target. Printing
a pipeline gives text that parses back to an equal pipeline. Whether `--pipeline X` names a file
is decided by its syntax, never by trying X as a path; nesting depth, number length and file size
are bounded before anything recursive or large runs, so every bad input is one PipelineError.
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
from compiler.errors import PipelineError
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
        return list(items)

    def option(self, items):
        return (items[0], items[1])

    def options(self, items):
        opts: dict[str, Any] = {}
        for key, value in items:
            if str(key) in opts:
                raise PipelineError(f"option '{key}' given twice (line {key.line}, column {key.column})")
            opts[str(key)] = value
        return opts

    mapping = options

    def pass_(self, items):
        return ("pass", items[0], items[1] if len(items) > 1 else {})

    def target(self, items):
        return ("target", items[0], items[1] if len(items) > 1 else {})

    def start(self, items):
        return list(items)


def parse_pipeline(text: str, *, source: str = "<pipeline>") -> Pipeline:
    """Parse inline or file-form pipeline text into pass instances and an optional target."""
    depth, offset = nesting_depth(text)
    if depth > MAX_NESTING:
        line, column = line_column(text, offset)
        raise PipelineError(f"{source} nests options {depth} deep at line {line}, column {column}; "
                            f"at most {MAX_NESTING} levels are read")
    try:
        items = _ToItems().transform(_parser().parse(text))
    except UnexpectedInput as exc:
        context = exc.get_context(text, span=60).rstrip("\n")
        raise PipelineError(f"syntax error in {source} at line {exc.line}, column {exc.column}:\n{context}",
                            hint="a pipeline is `pass{option=value,...}` items separated by commas "
                                 "or newlines") from None
    except VisitError as exc:  # a value the grammar admits but Python cannot hold
        if isinstance(exc.orig_exc, PipelineError):
            raise PipelineError(exc.orig_exc.what, where=source, hint=exc.orig_exc.hint) from None
        raise PipelineError(f"cannot read {source}: {exc.orig_exc}") from None
    passes: list[Pass] = []
    target: Backend | None = None
    for kind, name_token, opts in items:
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

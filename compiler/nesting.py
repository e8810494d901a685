"""How deeply brackets nest in a text, decided before a recursive parser or transformer sees it.

The pipeline language and the IR text nest lists and mappings; a hostile file nesting them
hundreds deep would otherwise end in a RecursionError. Brackets inside "double-quoted strings"
(with backslash escapes) do not count.
"""
from __future__ import annotations

MAX_NESTING = 32
_OPEN, _CLOSE = "([{<", ")]}>"


def nesting_depth(text: str, brackets: str = "[{") -> tuple[int, int]:
    """The deepest nesting of `brackets` outside strings, and the offset where it is reached."""
    closers = {_CLOSE[_OPEN.index(b)] for b in brackets}
    depth = deepest = where = 0
    in_string = escaped = False
    for i, c in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in brackets:
            depth += 1
            if depth > deepest:
                deepest, where = depth, i
        elif c in closers:
            depth = max(depth - 1, 0)
    return deepest, where


def line_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1

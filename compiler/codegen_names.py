"""The one gate between names from a model and generated source code (Python now, C++ next).

Graph, value and weight names come from files a user may not have written: an ONNX
`graph.name` that closes the module docstring and starts a statement must never become code.
Every identifier, string literal and comment a backend writes into source goes through one of
these functions:

* `python_identifier` / `cpp_identifier`: ASCII letters, digits and `_`, not starting with a
  digit or `_` (no dunders, none of C++'s reserved `_X` / `__` names), not a keyword, not one of
  the caller's reserved names (`self`, module globals), unique among `taken`;
* `python_string` / `cpp_string`: a quoted literal that evaluates to the text exactly;
* `docstring_text` / `comment_text`: the text on one line with nothing that ends the
  docstring or comment (quotes, newlines and non-ASCII are escaped).
"""
from __future__ import annotations

import keyword
import re

PYTHON_KEYWORDS = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)
CPP_KEYWORDS = frozenset("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
char32_t class compl concept const consteval constexpr constinit const_cast continue co_await
co_return co_yield decltype default delete do double dynamic_cast else enum explicit export extern
false float for friend goto if inline int long mutable namespace new noexcept not not_eq nullptr
operator or or_eq private protected public register reinterpret_cast requires return short signed
sizeof static static_assert static_cast struct switch template this thread_local throw true try
typedef typeid typename union unsigned using virtual void volatile wchar_t while xor xor_eq
final override import module main NULL
""".split())

_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]")
_COMMENT_SAFE = re.compile(r"[A-Za-z0-9 _\-.,:;()\[\]{}<>=+%@'\"!?#&|^~$/]")


def identifier(hint: str, *, keywords: frozenset[str], reserved: frozenset[str] | set[str] = frozenset(),
               taken: set[str] | None = None, fallback: str = "v", collapse_underscores: bool = False) -> str:
    """A safe identifier derived from `hint`; added to `taken` when given."""
    base = _NOT_IDENTIFIER.sub("_", str(hint)).strip("_")
    if collapse_underscores:
        base = re.sub(r"__+", "_", base)
    if not base:
        base = fallback
    elif base[0].isdigit():
        base = f"{fallback}_{base}"
    if base in keywords or base in reserved:
        base += "_"
    if taken is None:
        return base
    name, i = base, 1
    while name in taken or name in reserved:
        name = f"{base}_{i}"
        i += 1
    taken.add(name)
    return name


def python_identifier(hint: str, *, reserved: frozenset[str] | set[str] = frozenset(),
                      taken: set[str] | None = None, fallback: str = "v") -> str:
    return identifier(hint, keywords=PYTHON_KEYWORDS, reserved=reserved, taken=taken, fallback=fallback)


def cpp_identifier(hint: str, *, reserved: frozenset[str] | set[str] = frozenset(),
                   taken: set[str] | None = None, fallback: str = "v") -> str:
    return identifier(hint, keywords=CPP_KEYWORDS, reserved=reserved, taken=taken, fallback=fallback,
                      collapse_underscores=True)


def python_string(text: str) -> str:
    """A Python string literal (ASCII only) equal to `text`."""
    return ascii(str(text))


def cpp_string(text: str) -> str:
    """A C++ string literal equal to `text`'s UTF-8 bytes: octal escapes (never greedy like \\x),
    `?` escaped (no trigraphs)."""
    out = []
    for byte in str(text).encode("utf-8", "surrogatepass"):
        ch = chr(byte)
        if ch in '"\\?':
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def docstring_text(text: str) -> str:
    """`text` for inside a Python docstring: one line, ASCII, no quote or backslash that could end
    or change it (escaped so that the docstring reads back as the text)."""
    return str(text).encode("unicode_escape", "backslashreplace").decode("ascii").replace('"', '\\"')


def comment_text(text: str) -> str:
    """`text` for a `#` or `//` comment: one line of harmless ASCII; anything else (newlines,
    backslashes that would splice lines, `*` of `*/`, non-ASCII) shown as <U+XXXX>."""
    return "".join(c if _COMMENT_SAFE.fullmatch(c) else f"<U+{ord(c):04X}>" for c in str(text))

"""One way to select layers by name, for every pass option that takes layer patterns.

A pattern is a glob (`layer1.*.conv`) or a plain name; a plain name also selects everything under
it (`layer1` selects `layer1.0.conv1`). A node answers to its own name, the names of its constant
inputs (`fc.weight`) and their module stems (`fc`), and the module path it came from.
"""
from __future__ import annotations

import fnmatch
from typing import Iterable

from compiler.ir import Node


def layer_names(node: Node) -> list[str]:
    """Names a pattern may use for a node: its module path (from weight names) and node name."""
    names = [node.name]
    for v in node.inputs:
        if v is not None and v.data is not None:
            names.append(v.name)
            stem = v.name.rsplit(".", 1)[0]
            if stem != v.name:
                names.append(stem)
    if node.source:
        names.append(node.source.split(" (")[0])
    return names


def name_matches(pattern: str, names: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(n, pattern) or n.startswith(pattern + ".") for n in names)


def matching_pattern(patterns: Iterable[str], names: list[str]) -> str | None:
    """The first pattern that selects one of `names`, else None."""
    return next((p for p in patterns if name_matches(p, names)), None)

"""Sweep specs: pipeline text whose option values may be `sweep[...]` axes.

    reparam
    prune{ratio=sweep[0.1, 0.2, 0.3]}
    quantize{weights=sweep[int8, int4], activations=int8}
    target onnx{opset=sweep[21, 23]}
    target pytorch

is the product of its axes: 3 x 2 x 2 = 12 points, each compiled to both targets. A line `---`
separates alternatives, each expanded on its own; the points are their union, so an explicit
list of points is one alternative per point (and pipelines of different shapes, with and without
a pass, compare in one sweep; an empty alternative is the model as it comes, a baseline). A sweep names each target once; every point lowers to all of them.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from compiler.errors import PipelineError
from compiler.options import format_value
from compiler.pipeline import Item, SweepAxis, build_item, parse_items

ALTERNATIVE = re.compile(r"^[ \t]*---[ \t]*$", re.MULTILINE)
MAX_POINTS = 10_000


@dataclass(frozen=True)
class Point:
    """One configuration: pipeline text and target texts (canonical: they print back what parses),
    the value of every option the spec writes (`prune.ratio`), and which of them were swept."""

    index: int
    pipeline: str
    targets: tuple[str, ...]
    options: dict[str, Any] = field(hash=False)
    axes: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """What identifies the point (its cache key hashes this)."""
        return "\n".join([f"target {t}" for t in self.targets] + [self.pipeline])

    @property
    def label(self) -> str:
        return " ".join(f"{a}={format_value(self.options[a])}" for a in self.axes) or self.pipeline or "(no passes)"


def load_sweep(spec: str | Path, extra_targets: Sequence[str] = ()) -> list[Point]:
    """The points of a sweep file or inline text. `extra_targets` (`onnx`, `pytorch{...}`) join the
    targets the spec names; a target the spec names keeps the spec's options and axes."""
    path = Path(spec) if isinstance(spec, Path) or "\n" not in str(spec) else None
    if path is not None and path.suffix in (".nnf", ".pipeline", ".txt", ".sweep") and not path.is_file():
        raise PipelineError(f"sweep spec file not found: {path}")
    if path is not None and path.is_file():
        return parse_sweep(path.read_text(), source=str(path), extra_targets=extra_targets)
    return parse_sweep(str(spec), extra_targets=extra_targets)


def parse_sweep(text: str, *, source: str = "<sweep>", extra_targets: Sequence[str] = ()) -> list[Point]:
    points: list[Point] = []
    seen: set[str] = set()
    starts = [0] + [m.end() for m in ALTERNATIVE.finditer(text)]
    ends = [m.start() for m in ALTERNATIVE.finditer(text)] + [len(text)]
    for start, end in zip(starts, ends):
        padding = "\n" * text.count("\n", 0, start)  # keep line numbers of later alternatives true
        items = parse_items(padding + text[start:end], source=source)
        items += _extra_targets(items, extra_targets)
        for point in _expand(items, len(points)):
            if point.text not in seen:
                seen.add(point.text)
                points.append(point)
        if len(points) > MAX_POINTS:
            raise PipelineError(f"the sweep has more than {MAX_POINTS:,} points",
                                hint="sweep fewer values, or split it into several sweeps")
    return points


def _extra_targets(items: list[Item], extra: Sequence[str]) -> list[Item]:
    named = {i.name for i in items if i.kind == "target"}
    out = []
    for text in extra:
        for item in parse_items(f"target {text}", source="--targets"):
            if item.name not in named:
                named.add(item.name)
                out.append(item)
    return out


def _expand(items: list[Item], first_index: int) -> list[Point]:
    names: dict[str, int] = {}
    columns: list[str] = []   # one per item: `prune`, `prune#2` for a pass given twice, `onnx` for a target
    targets_seen: set[str] = set()
    for item in items:
        if item.kind == "target":
            if item.name in targets_seen:
                raise PipelineError(f"target '{item.name}' is named twice", where=item.where,
                                    hint="a sweep names each target once; sweep its options instead")
            targets_seen.add(item.name)
        names[item.name] = names.get(item.name, 0) + 1
        columns.append(item.name if names[item.name] == 1 else f"{item.name}#{names[item.name]}")
    axes = [(i, key, value.values) for i, item in enumerate(items)
            for key, value in item.options.items() if isinstance(value, SweepAxis)]
    for i, key, values in axes:
        for n, value in enumerate(values):  # each value on its own: an error names pass, option and value
            try:
                build_item(_with(items[i], {key: value}))
            except PipelineError as exc:
                raise PipelineError(exc.what, where=exc.where, hint=f"value {n + 1} of the sweep axis "
                                    f"{columns[i]}.{key}={format_value(list(values)).replace('[', 'sweep[', 1)}"
                                    ) from None
    total = 1
    for _, _, values in axes:
        total *= len(values)
    if total > MAX_POINTS:
        raise PipelineError(f"the sweep has {total:,} points, more than {MAX_POINTS:,}",
                            hint="sweep fewer values, or split it into several sweeps")
    points = []
    for combo in itertools.product(*[values for _, _, values in axes]):
        chosen = {(i, key): value for (i, key, _), value in zip(axes, combo)}
        built = [build_item(_with(item, {k: v for (j, k), v in chosen.items() if j == i}))
                 for i, item in enumerate(items)]
        options = {f"{columns[i]}.{key}": chosen.get((i, key), value)
                   for i, item in enumerate(items) for key, value in item.options.items()}
        pipeline = ",".join(str(b) for b, item in zip(built, items) if item.kind == "pass")
        targets = tuple(str(b) for b, item in zip(built, items) if item.kind == "target")
        points.append(Point(first_index + len(points), pipeline, targets, options,
                            tuple(f"{columns[i]}.{key}" for i, key, _ in axes)))
    return points


def _with(item: Item, values: dict[str, Any]) -> Item:
    return Item(item.kind, item.name, {**item.options, **values}, item.where)

"""Typed options for passes and targets: dataclass fields are the textual options.

`round_to: int = 1` on a pass is written `round-to=8` in a pipeline. Values arrive from the
parser as plain Python (int, float, str, bool, list, dict) and are checked against the field's
annotation, so a wrong option names the pass, the option and the type it expects.

Every number option declares its valid range on its field, `steps: int = option(1, low=1,
high=100)`; `check_ranges` (run by `Pass.__post_init__` and `Backend.__post_init__`, so for
parsed and hand-built instances alike) refuses values outside it, inside lists and mappings too.
A test holds every registered pass and target to declaring one.
"""
from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from typing import Any, Literal

from compiler.errors import PipelineError
from compiler.suggest import did_you_mean

_BARE = re.compile(r"(?!target\b)[A-Za-z_][A-Za-z0-9_\-.]*", re.ASCII)  # the grammar's NAME
RANGE = "nnforge_range"  # the field metadata key


@dataclasses.dataclass(frozen=True)
class Range:
    """Closed (or, with `*_open`, open) bounds for a number option; None leaves a side free."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if value != value:  # NaN
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        left = f"({'-inf' if self.low is None else format_value(self.low)}" if self.low_open or self.low is None \
            else f"[{format_value(self.low)}"
        right = f"{'inf' if self.high is None else format_value(self.high)})" if self.high_open or self.high is None \
            else f"{format_value(self.high)}]"
        return f"{left}, {right}"


def option(default: Any = dataclasses.MISSING, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field for a number option (or a list / mapping of numbers) with its valid range."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={RANGE: Range(low, high, low_open, high_open)})


def option_range(field: dataclasses.Field) -> Range | None:
    return field.metadata.get(RANGE)


def check_ranges(obj: Any) -> None:
    """Raise ValueError naming the first option of `obj` whose number(s) fall outside its range."""
    for key, (field, _tp) in option_fields(type(obj)).items():
        bounds = option_range(field)
        value = getattr(obj, field.name)
        if bounds is None or value is None:
            continue
        items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, (int, float)) and not isinstance(item, bool) and item not in bounds:
                raise ValueError(f"option '{key}' must be in {bounds}, got {format_value(item)}")


def option_name(field_name: str) -> str:
    return field_name.replace("_", "-")


def option_fields(cls: type) -> dict[str, tuple[dataclasses.Field, Any]]:
    """Textual option name -> (field, resolved type annotation)."""
    hints = typing.get_type_hints(cls)
    return {option_name(f.name): (f, hints[f.name]) for f in dataclasses.fields(cls) if f.init}


def describe_type(field: dataclasses.Field, tp: Any) -> str:
    """The option's type, with its range when it declares one (`int in [1, 100]`)."""
    bounds = option_range(field)
    return type_name(tp) + (f" in {bounds}" if bounds is not None else "")


def type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return " | ".join(str(a) for a in args)
    if origin in (list, tuple):
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"{{name=value}} of {type_name(args[1])}"
    if origin in (typing.Union, types.UnionType):
        names = " or ".join(type_name(a) for a in args if a is not type(None))
        return names + (" (or none)" if type(None) in args else "")
    return getattr(tp, "__name__", str(tp))


def coerce(tp: Any, value: Any) -> Any:
    """Convert a parsed value to the annotated type, or raise TypeError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        if value in args:
            return value
        spelled = other_spelling(value, args)
        if spelled is None:
            raise TypeError
        return spelled
    if origin in (typing.Union, types.UnionType):
        if value is None or value == "none":
            if type(None) in args:
                return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(arg, value)
            except TypeError:
                pass
        raise TypeError
    if origin in (list, tuple):
        items = value if isinstance(value, list) else [value]
        return tuple(coerce(args[0], v) for v in items)
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError
        return {str(k): coerce(args[1], v) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError
    if tp is str:
        if isinstance(value, str):
            return value
        raise TypeError
    raise TypeError


def other_spelling(value: Any, choices: tuple) -> Any:
    """The choice a spelling from another tool means: per-channel, per_channel, channel-wise and
    Channel all mean `channel`; None when it means none of them."""
    if not isinstance(value, str):
        return None
    word = value.strip().lower().replace("_", "-")
    word = word.removeprefix("per-").removesuffix("-wise")
    return word if word in choices else None


def build(cls: type, kind: str, name: str, raw: dict[str, Any]) -> Any:
    """Instantiate `cls` from textual options, with clear errors for unknown or ill-typed ones."""
    fields = option_fields(cls)
    kwargs = {}
    for key, value in raw.items():
        if key not in fields:
            known = ", ".join(fields) or "none"
            raise PipelineError(f"{kind} '{name}' has no option '{key}'{did_you_mean(key, fields)}",
                                hint=f"options of '{name}': {known}")
        field, tp = fields[key]
        try:
            kwargs[field.name] = coerce(tp, value)
        except TypeError:
            raise PipelineError(f"{kind} '{name}': option '{key}' expects {type_name(tp)}, "
                                f"got {format_value(value)}") from None
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise PipelineError(f"{kind} '{name}': {exc}") from None


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return value if _BARE.fullmatch(value) and value not in ("true", "false", "none") \
            else json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ",".join(f"{format_value(k)}={format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    return str(value)


def format_options(obj: Any) -> str:
    """`{a=1,b=x}` for the options that differ from their defaults; empty when none do."""
    parts = []
    for key, (field, _tp) in option_fields(type(obj)).items():
        value = getattr(obj, field.name)
        default = field.default if field.default is not dataclasses.MISSING else (
            field.default_factory() if field.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
        if value != default:
            parts.append(f"{key}={format_value(value)}")
    return "{" + ",".join(parts) + "}" if parts else ""


def options_dict(obj: Any) -> dict[str, Any]:
    """All options (textual names) with their values, for reports."""
    out = {}
    for key, (field, _tp) in option_fields(type(obj)).items():
        value = getattr(obj, field.name)
        if isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out

"""Typed options for passes and targets: dataclass fields are the textual options.

`round_to: int = 1` on a pass is written `round-to=8` in a pipeline. Values arrive from the
parser as plain Python (int, float, str, bool, list, dict) and are checked against the field's
annotation, so a wrong option names the pass, the option and the type it expects.
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Literal

from compiler.errors import PipelineError
from compiler.suggest import did_you_mean

_BARE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.]*$")


def option_name(field_name: str) -> str:
    return field_name.replace("_", "-")


def option_fields(cls: type) -> dict[str, tuple[dataclasses.Field, Any]]:
    """Textual option name -> (field, resolved type annotation)."""
    hints = typing.get_type_hints(cls)
    return {option_name(f.name): (f, hints[f.name]) for f in dataclasses.fields(cls) if f.init}


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
        return value if _BARE.match(value) and value not in ("true", "false", "none") else f'"{value}"'
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

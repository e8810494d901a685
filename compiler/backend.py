"""Backend base class and registry: lowering the IR to a deployment artifact."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence, TypeVar

import torch

from compiler.errors import PipelineError
from compiler.ir import Graph
from compiler.options import check_ranges, format_options
from compiler.suggest import did_you_mean


@dataclass
class Artifact:
    """What a backend produced: files on disk, the in-memory object, and a way to run it."""

    target: str
    obj: Any
    files: list[Path] = field(default_factory=list)
    runner: Callable[[Sequence[torch.Tensor]], list[torch.Tensor]] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def run(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        if self.runner is None:
            raise NotImplementedError(f"target '{self.target}' artifacts cannot be executed here")
        return self.runner(inputs)


class Backend:
    """Base of all backends; subclasses are dataclasses whose fields are target options."""

    name: ClassVar[str] = ""
    suffix: ClassVar[str] = ""  # the output file or folder suffix, for default output names

    def __post_init__(self) -> None:
        check_ranges(self)  # every number option within the range its field declares

    def lower(self, graph: Graph, output: Path | None) -> Artifact:  # pragma: no cover
        raise NotImplementedError

    def __str__(self) -> str:
        return self.name + format_options(self)


B = TypeVar("B", bound=type[Backend])
_BACKENDS: dict[str, type[Backend]] = {}


def register_backend(name: str) -> Callable[[B], B]:
    def wrap(cls: B) -> B:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"backend {cls.__name__} must be a dataclass")
        cls.name = name
        _BACKENDS[name] = cls
        return cls
    return wrap


def all_backends() -> dict[str, type[Backend]]:
    from compiler.plugins import load_plugins
    load_plugins()
    return dict(sorted(_BACKENDS.items()))


def get_backend(name: str) -> type[Backend]:
    backends = all_backends()
    if name not in backends:
        raise PipelineError(f"unknown target '{name}'{did_you_mean(name, backends)}",
                            hint=f"available targets: {', '.join(backends)}")
    return backends[name]

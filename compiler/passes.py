"""Pass base class and registry.

A pass is a frozen dataclass registered under a kebab-case name; its fields are its textual
options. `run(graph, ctx)` rewrites the graph in place and returns whether it changed plus
statistics; what it reads besides the graph (calibration data, seed, threads, the target's
hardware) comes from the `PassContext`. It never prints: timing, verification, IR dumps and
equivalence checks belong to the pass manager.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, ClassVar, TypeVar

from compiler.context import DEFAULT_CONTEXT, PassContext
from compiler.errors import PipelineError
from compiler.ir import Graph
from compiler.options import check_ranges, format_options
from compiler.suggest import did_you_mean


@dataclass
class PassResult:
    changed: bool
    stats: dict[str, int | float | str] = field(default_factory=dict)


class Pass:
    """Base of all passes. Subclasses are frozen dataclasses registered with `register_pass`."""

    name: ClassVar[str] = ""
    exact: ClassVar[bool] = True  # exact passes preserve outputs to float rounding
    parallel: ClassVar[bool] = True  # False: many small tensor ops, run on one thread (PassContext.torch_threads)

    def __post_init__(self) -> None:
        check_ranges(self)  # every number option within the range its field declares

    def run(self, graph: Graph, ctx: PassContext = DEFAULT_CONTEXT) -> PassResult:  # pragma: no cover
        raise NotImplementedError

    def calibrates(self) -> bool:
        """Whether `run` fits the model to calibration data (activation ranges, searches): made-up
        inputs would make it silently wrong, so the CLI asks for real data."""
        return False

    def __str__(self) -> str:
        return self.name + format_options(self)


P = TypeVar("P", bound=type[Pass])
_PASSES: dict[str, type[Pass]] = {}


def register_pass(name: str) -> Callable[[P], P]:
    def wrap(cls: P) -> P:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"pass {cls.__name__} must be a dataclass")
        if name in _PASSES:
            raise ValueError(f"pass '{name}' registered twice")
        cls.name = name
        _PASSES[name] = cls
        return cls
    return wrap


def all_passes() -> dict[str, type[Pass]]:
    from compiler.plugins import load_plugins
    load_plugins()
    return dict(sorted(_PASSES.items()))


def get_pass(name: str) -> type[Pass]:
    passes = all_passes()
    if name not in passes:
        raise PipelineError(f"unknown pass '{name}'{did_you_mean(name, passes)}",
                            hint="`nnforge passes` lists every pass with its options")
    return passes[name]

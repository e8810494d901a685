"""Backend base class and registry: lowering the IR to a deployment artifact."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence, TypeVar

import torch

from compiler.context import PassContext, TargetDescription
from compiler.costs import CostSettings
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

    def lower_in(self, graph: Graph, output: Path | None, ctx: PassContext) -> Artifact:
        """`lower` with the compile's pass context (calibration data, hardware description), for a
        backend that runs passes itself; most need only the graph."""
        return self.lower(graph, output)

    def describe_target(self, description: TargetDescription) -> TargetDescription:
        """The hardware description passes see when this is a target: a backend for a device fills
        in what its options say (part, clock, tile shape); others leave it as it is."""
        return description

    def refuses(self, fmt: str) -> str:
        """Why this target cannot carry quantization format `fmt` ("" when it can): passes that
        choose formats themselves (searches) only choose ones every target carries."""
        return ""

    def costs(self, graph: Graph, artifact: Artifact, settings: CostSettings) -> dict[str, Any]:
        """This target's columns of the unified cost report (`compiler.costs`): values under the
        shared names of `compiler.costs.COLUMNS` (latency_s, throughput_fps, energy_j, dsp, tiles,
        ...; extras of its own after them), each a number, text or None, plus `basis`: column ->
        how it was obtained ("measured: ...", "estimated: ..."). Measurements follow `settings`
        (threads, runs). The report adds the graph's counts and the accuracy itself; a target
        without measurements or estimates of its own adds nothing."""
        return {}

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


def merge_target(given: Backend, from_pipeline: Backend | None) -> Backend:
    """A target named on the command line (or to compile()) keeps the options the pipeline file's
    `target` line gives the same backend; an option both set to different values is an error."""
    if from_pipeline is None or from_pipeline.name != given.name:
        return given
    merged = {}
    for f in dataclasses.fields(given):
        if not f.init:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        mine, theirs = getattr(given, f.name), getattr(from_pipeline, f.name)
        if mine != default and theirs != default and mine != theirs:
            raise PipelineError(f"target {given} conflicts with the pipeline file's target {from_pipeline}: "
                                f"{f.name.replace('_', '-')} is {mine!r} in one and {theirs!r} in the other",
                                hint="give the option in one place, or the same value in both")
        merged[f.name] = mine if mine != default else theirs
    return dataclasses.replace(given, **merged)


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

"""Frontend registry: turning a user's model (module, file) into a Graph."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from compiler.errors import FrontendError, UserInputError
from compiler.ir import Graph


@dataclass(frozen=True)
class Frontend:
    """`accepts(model)` says whether this frontend handles the object; `load` builds the graph.

    `load(model, example_inputs, input_shapes, **options)` gets example tensors when the caller
    has them, and/or one static shape per graph input, plus the keyword options it declares in
    `options` (the torch frontend's `capture`). It returns a Graph, or an `Imported` graph with
    facts for the report.
    """

    name: str
    accepts: Callable[[Any], bool]
    load: Callable[..., "Graph | Imported"]
    options: tuple[str, ...] = ()


@dataclass
class Imported:
    """A graph with what the frontend knows about its import (capture path, output names...)."""

    graph: Graph
    facts: dict[str, Any] = field(default_factory=dict)


_FRONTENDS: list[Frontend] = []


def register_frontend(frontend: Frontend) -> Frontend:
    _FRONTENDS.append(frontend)
    return frontend


def import_model(model: Any, example_inputs: Sequence[torch.Tensor] | None = None,
                 input_shapes: Sequence[tuple[int, ...]] | None = None, *, capture: str = "auto") -> Graph:
    """Bring any supported model object into the IR."""
    return import_with_facts(model, example_inputs, input_shapes, capture=capture).graph


def import_with_facts(model: Any, example_inputs: Sequence[torch.Tensor] | None = None,
                      input_shapes: Sequence[tuple[int, ...]] | None = None, *,
                      capture: str = "auto") -> Imported:
    """`import_model`, keeping the frontend's facts (its name under "frontend")."""
    from compiler.plugins import load_plugins
    load_plugins()
    if isinstance(model, Graph):
        return Imported(model, {"frontend": "ir"})
    for frontend in _FRONTENDS:
        if frontend.accepts(model):
            options = {"capture": capture} if "capture" in frontend.options else {}
            if capture != "auto" and not options:
                raise UserInputError(f"capture='{capture}' applies to torch modules, not to a {frontend.name} model",
                                     hint="leave capture at 'auto' for model files")
            result = frontend.load(model, example_inputs, input_shapes, **options)
            imported = result if isinstance(result, Imported) else Imported(result)
            imported.facts = {"frontend": frontend.name, **imported.facts}
            return imported
    known = ", ".join(f.name for f in _FRONTENDS)
    raise FrontendError(f"no frontend accepts a {type(model).__name__}",
                        hint=f"pass a torch.nn.Module or a model file; frontends: {known}")

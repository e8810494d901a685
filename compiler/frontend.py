"""Frontend registry: turning a user's model (module, file) into a Graph."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from compiler.errors import FrontendError
from compiler.ir import Graph


@dataclass(frozen=True)
class Frontend:
    """`accepts(model)` says whether this frontend handles the object; `load` builds the graph.

    `load(model, example_inputs, input_shapes)` gets example tensors when the caller has them,
    and/or one static shape per graph input.
    """

    name: str
    accepts: Callable[[Any], bool]
    load: Callable[[Any, Sequence[torch.Tensor] | None, Sequence[tuple[int, ...]] | None], Graph]


_FRONTENDS: list[Frontend] = []


def register_frontend(frontend: Frontend) -> Frontend:
    _FRONTENDS.append(frontend)
    return frontend


def import_model(model: Any, example_inputs: Sequence[torch.Tensor] | None = None,
                 input_shapes: Sequence[tuple[int, ...]] | None = None) -> Graph:
    """Bring any supported model object into the IR."""
    from compiler.plugins import load_plugins
    load_plugins()
    if isinstance(model, Graph):
        return model
    for frontend in _FRONTENDS:
        if frontend.accepts(model):
            return frontend.load(model, example_inputs, input_shapes)
    known = ", ".join(f.name for f in _FRONTENDS)
    raise FrontendError(f"no frontend accepts a {type(model).__name__}",
                        hint=f"pass a torch.nn.Module or a model file; frontends: {known}")

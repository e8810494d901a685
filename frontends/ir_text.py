"""Frontend for nnforge's own IR text (`.nnfir`): crash reproducers and hand-written graphs.

Weights not inlined in the text come from `<stem>.safetensors` in the same folder (the file a
reproducer is written with); nothing else is read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from compiler.errors import FrontendError, UserInputError
from compiler.frontend import Frontend, register_frontend
from compiler.ir import Graph
from compiler.ir_parser import parse_graph

SUFFIX = ".nnfir"


def _accepts(model: Any) -> bool:
    return isinstance(model, (str, Path)) and str(model).endswith(SUFFIX)


def load_ir_file(path: str | Path, example_inputs: Sequence[torch.Tensor] | None = None,
                 input_shapes: Sequence[tuple[int, ...]] | None = None) -> Graph:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"IR file not found: {path}")
    weights_path = path.with_suffix(".safetensors")
    try:
        weights = load_file(str(weights_path)) if weights_path.is_file() else {}
    except SafetensorError as exc:
        raise UserInputError(f"cannot read weights {weights_path}: {exc}") from None
    graph = parse_graph(path.read_text(), weights)
    shapes = [tuple(t.shape) for t in example_inputs] if example_inputs is not None else input_shapes
    if shapes is not None and [v.shape for v in graph.inputs] != [tuple(s) for s in shapes]:
        raise FrontendError(f"{path} has static inputs {[list(v.shape) for v in graph.inputs]}, "
                            f"not {[list(s) for s in shapes]}",
                            hint="IR files are compiled for the shapes they were printed with")
    return graph


register_frontend(Frontend(name="nnfir", accepts=_accepts, load=load_ir_file))

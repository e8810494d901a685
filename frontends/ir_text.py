"""Frontend for nnforge's own IR text (`.nnfir`): crash reproducers and hand-written graphs.

Weights not inlined in the text come from `<stem>.safetensors` in the same folder (the file a
reproducer is written with), refused if it is a symlink leading out of that folder; nothing else
is read.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch

from compiler.errors import FrontendError, UserInputError
from compiler.frontend import Frontend, register_frontend
from compiler.ir import Graph
from compiler.ir_parser import parse_graph
from frontends.confined import confined_file

SUFFIX = ".nnfir"
MAX_TEXT_BYTES = 2**28  # 256 MiB of text: weights live in the .safetensors file


def _accepts(model: Any) -> bool:
    return isinstance(model, (str, Path)) and str(model).endswith(SUFFIX)


def load_ir_file(path: str | Path, example_inputs: Sequence[torch.Tensor] | None = None,
                 input_shapes: Sequence[tuple[int, ...]] | None = None) -> Graph:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    text = _read_text(path)
    weights_path = path.with_suffix(".safetensors")
    weights = {}
    if os.path.lexists(weights_path):  # a symlink must still point inside the IR file's folder
        confined = confined_file(path.parent, weights_path.name, str(path), "weights file")
        try:
            weights = load_file(str(confined))
        except (SafetensorError, OSError) as exc:
            raise UserInputError(f"cannot read weights {weights_path}: {exc}") from None
    graph = parse_graph(text, weights)
    shapes = [tuple(t.shape) for t in example_inputs] if example_inputs is not None else input_shapes
    if shapes is not None and [v.shape for v in graph.inputs] != [tuple(s) for s in shapes]:
        raise FrontendError(f"{path} has static inputs {[list(v.shape) for v in graph.inputs]}, "
                            f"not {[list(s) for s in shapes]}",
                            hint="IR files are compiled for the shapes they were printed with")
    return graph


def _read_text(path: Path) -> str:
    try:
        if not path.is_file():
            raise UserInputError(f"IR file not found: {path}")
        size = path.stat().st_size
        if size > MAX_TEXT_BYTES:
            raise UserInputError(f"IR file {path} is {size} bytes; at most {MAX_TEXT_BYTES} are read",
                                 hint="weights belong in the .safetensors file beside it")
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise UserInputError(f"cannot read IR file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UserInputError(f"IR file {path} is not UTF-8 text (byte {exc.start})",
                             hint="IR files are the UTF-8 text nnforge prints") from None


register_frontend(Frontend(name="nnfir", accepts=_accepts, load=load_ir_file))

"""The ONNX frontend: a .onnx file (or an onnx.ModelProto) -> a verified IR graph.

    graph = import_onnx("model.onnx", input_shapes=[(1, 3, 224, 224)])

Steps: load the file safely (loader.py: size limits, parse errors, IR version and opset
11..newest), check every node's op at once (support.py: one error lists every unsupported op,
control flow included), bind the input shapes (shapes.py: dynamic dims from `input_shapes` or
example inputs), translate node by node through the mapping table (table.py, ops_*.py,
constants.py) folding constant subgraphs as it goes, cross-check each node's types with ONNX's
own shape inference (crosscheck.py), drop what the outputs do not use, and verify the IR.

IR value names are the ONNX tensor names (sanitized), so the result reads like the model in
Netron; node sources read `<onnx node name> (<op type>)`. The exact input and output names and
declared dims go on `graph.interface`, so backends give the artifact the original's signature. Weights are the initializers' bytes,
read once into torch tensors (initializers no node reads are never read).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import onnx
import torch

from compiler.errors import FrontendError, VerificationError
from compiler.frontend import Frontend, register_frontend
from compiler.gcpause import gc_paused
from compiler.interface import Interface, Port
from compiler.ir import Graph
from compiler.verifier import verify
from frontends.onnx import constants, ops_math, ops_nn, ops_pool, ops_reduce, ops_resize, ops_shape  # noqa: F401
from frontends.onnx import ops_control, ops_quant, ops_recurrent  # noqa: F401
from frontends.onnx.loader import OnnxModel, load
from frontends.onnx.shapes import bind_inputs, check_outputs, declared_dims, graph_inputs
from frontends.onnx.support import Unsupported, require_supported, unsupported_ops
from frontends.onnx.table import MAPPINGS
from frontends.onnx.translate import Translator


def import_onnx(model: str | Path | onnx.ModelProto, example_inputs: Sequence[torch.Tensor] | None = None,
                input_shapes: Sequence[Sequence[int]] | None = None) -> Graph:
    """Import an ONNX model (a path or a ModelProto) into a verified IR graph."""
    with gc_paused():
        loaded = load(model)
        require_supported(loaded)
        types = bind_inputs(loaded.proto.graph, example_inputs, input_shapes)
        graph = Translator(loaded, types, shapes_given=example_inputs is not None or input_shapes is not None).run()
        check_outputs(loaded.proto.graph, graph.outputs, loaded.label)
        graph.interface = interface(loaded)
        graph.eliminate_dead_code()
        try:
            verify(graph)
        except VerificationError as exc:
            raise FrontendError(f"the ONNX frontend produced invalid IR (a frontend bug): {exc.what}") from None
    return graph


def interface(loaded: OnnxModel) -> Interface:
    """The file's input and output names and declared dims, for backends to keep."""
    g = loaded.proto.graph
    port = lambda vi: Port(vi.name, None if declared_dims(vi) is None else tuple(declared_dims(vi)))  # noqa: E731
    return Interface(tuple(port(vi) for vi in graph_inputs(g)), tuple(port(vi) for vi in g.output),
                     list(loaded.notes))


def check_model(model: str | Path | onnx.ModelProto) -> list[Unsupported]:
    """Every op of `model` nnforge cannot import (empty when all are supported), without importing."""
    return unsupported_ops(load(model))


def accepts(model: Any) -> bool:
    if isinstance(model, onnx.ModelProto):
        return True
    return isinstance(model, (str, Path)) and str(model).lower().endswith(".onnx")


register_frontend(Frontend(name="onnx", accepts=accepts, load=import_onnx))

__all__ = ["MAPPINGS", "OnnxModel", "Unsupported", "check_model", "import_onnx"]

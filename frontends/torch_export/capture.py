"""Capture: `torch.export.export` (non-strict) and decomposition to the documented op set.

Non-strict mode traces the real Python forward with fake tensors, so Hugging Face models
(Python containers, `ModelOutput` dataclasses, shape arithmetic) capture as they are; strict
mode (TorchDynamo) rejects more of them and is slower. Shapes are specialised to the example
inputs: no `dynamic_shapes` are passed, as the ONNX frontend fixes its input shapes too.
"""
from __future__ import annotations

import operator
import re
from typing import Any, Callable, Sequence

import torch
import torch.fx as fx
from torch.export import ExportedProgram

from compiler.errors import FrontendError
from frontends.torch_export.decompositions import decomposition_table
from frontends.torch_fx.capture import traceback_location

_HINT = ("torch.export specialises shapes to the example inputs and records one path through the "
         "model: data-dependent control flow (`if x.sum() > 0`) and data-dependent shapes (nonzero, "
         ".item(), .tolist()) cannot be captured; rewrite them with tensor ops (torch.where), or use "
         "capture='fx'")
_DATA_DEPENDENT = re.compile(r"data[- ]dependent|GuardOnDataDependent|unbacked", re.IGNORECASE)


def export_program(module: torch.nn.Module, inputs: Sequence[Any],
                   inside_op_set: Callable[[ExportedProgram], bool]) -> ExportedProgram:
    """Export `module` on `inputs` and decompose it to core ATen (less the kept ops).

    When every data-dependent op of the exported graph already has a translation
    (`inside_op_set(program)`; static ops are evaluated, not translated), once
    in-place activations nothing can observe are made out-of-place, the graph is inside the op
    set and decomposing would only re-trace it (2-3x the export time on CNNs): it is skipped."""
    name = type(module).__name__
    try:
        with torch.no_grad():
            program = torch.export.export(module, tuple(inputs), strict=False)
    except Exception as exc:  # noqa: BLE001 - every capture failure becomes one FrontendError
        raise _failure(f"torch.export could not capture {name}", exc) from None
    _unobserved_inplace_to_functional(program.graph)
    if inside_op_set(program):
        return program
    try:
        return program.run_decompositions(decomposition_table())
    except Exception as exc:  # noqa: BLE001
        raise _failure(f"decomposing the exported {name} to core ATen failed", exc) from None


def _failure(what: str, exc: BaseException) -> FrontendError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    kind = "data-dependent value" if _DATA_DEPENDENT.search(f"{type(exc).__name__} {exc}") else type(exc).__name__
    return FrontendError(f"{what}: {kind}: {first}", where=traceback_location(exc.__traceback__), hint=_HINT)


def _unobserved_inplace_to_functional(graph: fx.Graph) -> None:
    """`relu_(x)` -> `relu(x)` where no one can tell: x is an intermediate result (not an input,
    parameter or buffer), not a view of another tensor, has no view taken of it, and nothing
    reads it after the mutation. Anything else is left to run_decompositions' functionalization."""
    order = {node: i for i, node in enumerate(graph.nodes)}
    for node in graph.nodes:
        functional = _functional_form(node.target) if node.op == "call_function" else None
        target = node.args[0] if node.args else None
        if functional is None or not isinstance(target, fx.Node) or target.op != "call_function":
            continue
        if _aliases(target) or any(u is not node and (order[u] > order[node] or _aliases(u)) for u in target.users):
            continue
        node.target = functional


def _functional_form(target: Any) -> Any:
    packet = getattr(target, "overloadpacket", None)
    name = getattr(packet, "__name__", "")
    if not name.endswith("_") or name.endswith("__"):
        return None
    return getattr(getattr(torch.ops.aten, name[:-1], None), target._overloadname, None)


def _aliases(node: fx.Node) -> bool:
    """Whether the node's result may share storage with one of its inputs (a view)."""
    if node.op != "call_function":
        return node.op != "output"
    target = node.target
    if target is operator.getitem:
        return _aliases(node.args[0])
    schema = getattr(target, "_schema", None)
    return schema is None or any(r.alias_info is not None for r in schema.returns)

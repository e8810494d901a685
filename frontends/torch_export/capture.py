"""Capture: `torch.export.export` (non-strict) and decomposition to the documented op set.

Non-strict mode traces the real Python forward with fake tensors, so Hugging Face models
(Python containers, `ModelOutput` dataclasses, shape arithmetic) capture as they are; strict
mode (TorchDynamo) rejects more of them and is slower. Shapes are specialised to the example
inputs: no `dynamic_shapes` are passed, as the ONNX frontend fixes its input shapes too.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import torch
from torch.export import ExportedProgram

from compiler.errors import FrontendError
from frontends.torch_export.decompositions import decomposition_table
from frontends.torch_fx.capture import traceback_location

_HINT = ("torch.export specialises shapes to the example inputs and records one path through the "
         "model: data-dependent control flow (`if x.sum() > 0`) and data-dependent shapes (nonzero, "
         ".item(), .tolist()) cannot be captured; rewrite them with tensor ops or torch.cond, or use "
         "capture='fx'")
_DATA_DEPENDENT = re.compile(r"data[- ]dependent|GuardOnDataDependent|unbacked", re.IGNORECASE)


def export_program(module: torch.nn.Module, inputs: Sequence[Any],
                   translated: Callable[[Any], bool]) -> ExportedProgram:
    """Export `module` on `inputs` and decompose it to core ATen (less the kept ops).

    When every op of the exported graph already has a translation (`translated(target)`),
    the graph is inside the op set and decomposing would only re-trace it (2-3x the export
    time on CNNs), so it is skipped."""
    name = type(module).__name__
    try:
        with torch.no_grad():
            program = torch.export.export(module, tuple(inputs), strict=False)
    except Exception as exc:  # noqa: BLE001 - every capture failure becomes one FrontendError
        raise _failure(f"torch.export could not capture {name}", exc) from None
    if all(translated(n.target) for n in program.graph.nodes if n.op == "call_function"):
        return program
    try:
        return program.run_decompositions(decomposition_table())
    except Exception as exc:  # noqa: BLE001
        raise _failure(f"decomposing the exported {name} to core ATen failed", exc) from None


def _failure(what: str, exc: BaseException) -> FrontendError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    kind = "data-dependent value" if _DATA_DEPENDENT.search(f"{type(exc).__name__} {exc}") else type(exc).__name__
    return FrontendError(f"{what}: {kind}: {first}", where=traceback_location(exc.__traceback__), hint=_HINT)

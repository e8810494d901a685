"""The torch.fx frontend: an `nn.Module` -> a verified IR graph.

    graph = import_module(model.eval(), example_inputs=(x,))

Steps: trace with torch.fx (capture.py), run the trace once on the example inputs recording
every node's result, translate node by node through the module/function/method tables
(translate.py), drop nodes whose results are unused, verify the IR, and check numerically that
the IR interpreter reproduces the traced model's outputs. Anything that cannot be translated
exactly raises `FrontendError` naming the operation and where the model uses it.

Graph inputs are the forward() tensor arguments in order; graph outputs are the returned
tensors flattened depth-first (tuple/list items in order, dict values in insertion order,
None entries skipped). Node sources read `module.path (file.py:line)`.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from compiler.errors import FrontendError, VerificationError
from compiler.interpreter import interpret
from compiler.gcpause import gc_paused
from compiler.ir import Graph
from compiler.verifier import verify
from frontends.torch_fx import capture, inplace
from frontends.torch_fx.modules import check_modes
from frontends.torch_fx.translate import Translator, flatten, is_factory, source_of

RTOL = 1e-5
ATOL = 1e-6  # relative to the output's largest magnitude (at least 1)


def import_module(module: torch.nn.Module, example_inputs: Sequence[torch.Tensor] | None = None,
                  input_shapes: Sequence[tuple[int, ...]] | None = None) -> Graph:
    """Trace `module`, translate it into the IR, verify it and check it numerically."""
    if not isinstance(module, torch.nn.Module):
        raise FrontendError(f"the torch.fx frontend takes an nn.Module, got {type(module).__name__}")
    with gc_paused():
        return _import(module, example_inputs, input_shapes)


def _import(module: torch.nn.Module, example_inputs: Sequence[torch.Tensor] | None,
            input_shapes: Sequence[tuple[int, ...]] | None) -> Graph:
    fx_graph = capture.trace(module)
    inputs = capture.prepare_inputs(fx_graph, example_inputs, input_shapes)
    submodules = dict(module.named_modules(remove_duplicate=False))
    check_modes(fx_graph, submodules, source_of)       # before running: these would change the model
    inplace.check(fx_graph, submodules, source_of)
    captured = capture.run(module, fx_graph, inputs, keep=lambda n: n.op == "output" or is_factory(n),
                           where=source_of)
    graph = Translator(captured, submodules, type(module).__name__).run()
    graph.eliminate_dead_code()
    try:
        verify(graph)
    except VerificationError as exc:
        raise FrontendError(f"the torch.fx frontend produced invalid IR (a frontend bug): {exc.what}") from None
    check_outputs(graph, [t for t in inputs if isinstance(t, torch.Tensor)], captured.output)
    return graph


def check_outputs(graph: Graph, inputs: list[torch.Tensor], reference: Any) -> None:
    """The IR must reproduce the traced model's outputs (a mistranslation never passes silently)."""
    expected = [t for t in flatten(reference) if t is not None]
    got = interpret(graph, *inputs)
    if len(got) != len(expected):
        raise FrontendError(f"the IR has {len(got)} outputs but the model returned {len(expected)} tensors")
    for i, (a, b) in enumerate(zip(got, expected)):
        if a.shape != b.shape or a.dtype != b.dtype:
            raise FrontendError(f"output {i}: the IR gives {a.dtype}{list(a.shape)}, the model {b.dtype}{list(b.shape)}")
        if a.is_floating_point():
            scale = max(1.0, float(b.abs().max())) if b.numel() else 1.0
            ok = torch.allclose(a, b, rtol=RTOL, atol=ATOL * scale, equal_nan=True)
        else:
            ok = torch.equal(a, b)
        if not ok:
            diff = float((a.double() - b.double()).abs().max())
            raise FrontendError(
                f"output {i} of the imported graph differs from the model (max abs diff {diff:.3g})",
                hint="an op was translated inexactly (e.g. an in-place update of a view, or a non-deterministic "
                     "op); please report it with the model")


__all__ = ["check_outputs", "import_module"]

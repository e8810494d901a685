"""The torch.export frontend: an `nn.Module` -> a verified IR graph, for models that symbolic
tracing cannot follow (Hugging Face transformers, Python control flow on shapes).

    imported = import_module(model.eval(), example_inputs=(input_ids, attention_mask))
    imported.graph, imported.facts["outputs"]

Steps: `torch.export.export` (non-strict) and `run_decompositions` to core ATen less the ops
kept whole (capture.py, decompositions.py); translation node by node, folding what the example
shapes make static (translate.py); dead-code removal; verification; and a numerical check that
the IR interpreter reproduces the module's own outputs. Unsupported ATen ops are all listed in one
`FrontendError`; nothing is translated approximately.

Graph inputs are the forward() tensor arguments in order. Graph outputs are the returned tensors
in pytree order: tuple/list items in order, dict and `ModelOutput` fields in insertion order,
None skipped; `facts["outputs"]` names them (`last_hidden_state`, `pooler_output`, `0.1`).
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import torch

from compiler.errors import FrontendError, VerificationError
from compiler.frontend import Imported
from compiler.gcpause import gc_paused
from compiler.verifier import verify
from frontends.torch_export.capture import export_program
from frontends.torch_export.translate import Translator, inside_op_set
from frontends.torch_fx import check_outputs


def import_module(module: torch.nn.Module, example_inputs: Sequence[torch.Tensor] | None = None,
                  input_shapes: Sequence[tuple[int, ...]] | None = None) -> Imported:
    """Export `module`, translate it into the IR, verify it and check it numerically."""
    if not isinstance(module, torch.nn.Module):
        raise FrontendError(f"the torch.export frontend takes an nn.Module, got {type(module).__name__}")
    inputs = _inputs(example_inputs, input_shapes)
    started = time.perf_counter()
    program = export_program(module, inputs, inside_op_set)
    exported = time.perf_counter()
    with gc_paused():
        graph, names = Translator(program, module).run()
        graph.eliminate_dead_code()
        try:
            verify(graph)
        except VerificationError as exc:
            raise FrontendError(f"the torch.export frontend produced invalid IR (a frontend bug): {exc.what}") from None
        translated = time.perf_counter()
        with torch.no_grad():
            reference = module(*inputs)
        check_outputs(graph, [t for t in inputs if isinstance(t, torch.Tensor)], reference)
    seconds = {"export": exported - started, "translate": translated - exported,
               "check": time.perf_counter() - translated}
    return Imported(graph, {"outputs": names, "seconds": seconds})


def _inputs(example_inputs: Sequence[Any] | torch.Tensor | None,
            input_shapes: Sequence[Sequence[int]] | None) -> list[Any]:
    """Example inputs from the caller, or float32 random ones of `input_shapes`."""
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if example_inputs is not None:
        if input_shapes is not None:
            shapes = [tuple(s) for s in ([input_shapes] if all(isinstance(d, int) for d in input_shapes)
                                         else input_shapes)]
            got = [tuple(t.shape) if isinstance(t, torch.Tensor) else None for t in example_inputs]
            if shapes != got:
                raise FrontendError(f"example_inputs have shapes {got} but input_shapes says {shapes}",
                                    hint="pass only one of them, or make them agree")
        return list(example_inputs)
    if input_shapes is None:
        raise FrontendError("the torch.export frontend needs example_inputs or input_shapes",
                            hint="pass example tensors, or one static shape per forward() input")
    if all(isinstance(d, int) for d in input_shapes):
        input_shapes = [tuple(input_shapes)]
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(tuple(s), generator=gen) for s in input_shapes]


__all__ = ["import_module"]

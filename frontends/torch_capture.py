"""The frontend for `nn.Module`s: chooses how the model is captured.

`capture="export"` uses torch.export (frontends/torch_export), which follows real-world models
(Hugging Face transformers, CNN libraries) through Python control flow on shapes. `capture="fx"`
uses symbolic tracing (frontends/torch_fx), which keeps the module structure as written and
needs models written to be traceable. `capture="auto"` (the default) tries torch.export first
and falls back to torch.fx; the import facts say which one captured the model and why the other
was not used. When neither can, one error names both failures, a line each.
"""
from __future__ import annotations

from typing import Sequence

import torch

from compiler.errors import FrontendError, UserInputError
from compiler.frontend import Frontend, Imported, register_frontend
from frontends import torch_export, torch_fx

CAPTURES = ("auto", "export", "fx")
_WORKAROUNDS = ("make the model traceable: keep data-dependent decisions in tensor ops (torch.where), "
                "pass example inputs of the shapes you deploy, call model.eval(); see docs/capture.md")


def load(module: torch.nn.Module, example_inputs: Sequence[torch.Tensor] | None,
         input_shapes: Sequence[tuple[int, ...]] | None, capture: str = "auto") -> Imported:
    if capture not in CAPTURES:
        raise UserInputError(f"unknown capture '{capture}'", hint=f"use one of {', '.join(CAPTURES)}")
    if capture == "fx":
        return Imported(torch_fx.import_module(module, example_inputs, input_shapes),
                        {"capture": "fx", "requested": "fx", "export": "not tried (capture=fx)"})
    if capture == "export":
        imported = torch_export.import_module(module, example_inputs, input_shapes)
        return Imported(imported.graph, {"capture": "export", "requested": "export",
                                         "fx": "not tried (capture=export)", **imported.facts})
    try:
        imported = torch_export.import_module(module, example_inputs, input_shapes)
    except FrontendError as export_error:
        try:
            graph = torch_fx.import_module(module, example_inputs, input_shapes)
        except FrontendError as fx_error:
            raise FrontendError(
                f"neither torch.export nor torch.fx could capture {type(module).__name__}:\n"
                f"  torch.export: {_one_line(export_error)}\n  torch.fx: {_one_line(fx_error)}",
                hint=_WORKAROUNDS) from None
        return Imported(graph, {"capture": "fx", "requested": "auto",
                                "export": f"failed, fell back to torch.fx: {_one_line(export_error)}"})
    return Imported(imported.graph, {"capture": "export", "requested": "auto",
                                     "fx": "not needed (auto tries torch.export first)", **imported.facts})


def _one_line(error: FrontendError) -> str:
    what = " ".join(error.what.split())
    return f"{what} (at {error.where})" if error.where else what


register_frontend(Frontend(name="torch", accepts=lambda m: isinstance(m, torch.nn.Module), load=load,
                           options=("capture",)))

"""The pass manager: runs a pipeline and does everything around each pass.

Passes only rewrite. The manager times them, verifies the IR after each (on by default), can
dump the IR after each, can check numerical equivalence against the graph before the pass, and
when a pass throws (or an exact pass changes the outputs) it writes a reproducer holding the IR
before that pass and the pipeline text, and names it in the error.
"""
from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from compiler.context import DEFAULT_CONTEXT, PassContext
from compiler.errors import NNForgeError
from compiler.gcpause import gc_paused
from compiler.interpreter import interpret
from compiler.ir import Graph
from compiler.metrics import graph_summary
from compiler.options import options_dict
from compiler.passes import Pass
from compiler.printer import print_graph
from compiler.reproducer import write_reproducer
from compiler.verifier import verify

EXACT_RTOL = 1e-4  # exact passes must keep max |diff| within this fraction of the output scale


class PassFailure(NNForgeError):
    """A pass raised, broke the IR, or changed the outputs of an exact rewrite."""


@dataclass
class PassRecord:
    """One row of the report; the field names are part of the report format."""

    name: str
    options: dict[str, Any]
    seconds: float
    verify_seconds: float
    nodes_before: int
    nodes_after: int
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    changed: bool
    stats: dict[str, Any] = field(default_factory=dict)
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None


@dataclass
class PassManager:
    """Runs passes in order on a graph, in place."""

    passes: Sequence[Pass]
    verify_each: bool = True
    check_equivalence: bool = False
    equivalence_inputs: Sequence[torch.Tensor] | None = None
    ir_dump: Callable[[str, str], None] | None = None
    reproducer_dir: Path | None = None
    on_pass: Callable[[int, Pass], None] | None = None
    context: PassContext = DEFAULT_CONTEXT

    @gc_paused()
    def run(self, graph: Graph) -> list[PassRecord]:
        if self.verify_each:
            verify(graph)
        reference = self._outputs(graph) if self.check_equivalence else None
        records = []
        summary = graph_summary(graph)
        for index, p in enumerate(self.passes):
            if self.on_pass is not None:
                self.on_pass(index, p)
            record, reference, summary = self._run_one(graph, index, p, reference, summary)
            records.append(record)
        return records

    def _run_one(self, graph: Graph, index: int, p: Pass, reference, before: dict[str, int]):
        snapshot = print_graph(graph)  # the reproducer's IR: the pass mutates the graph in place
        weights = dict(graph.weights)
        start = time.perf_counter()
        try:
            with self.context.torch_threads(p.parallel):
                result = p.run(graph, self.context)
        except NNForgeError as exc:
            self._fail(index, p, snapshot, weights, f"pass '{p.name}' failed: {exc.what}", exc.hint)
        except Exception as exc:  # a bug in the pass: keep the traceback in the reproducer
            detail = "".join(traceback.format_exception(exc))
            self._fail(index, p, snapshot, weights, f"pass '{p.name}' crashed: {exc!r}",
                       "this is a bug in nnforge; please report it with the reproducer", detail)
        seconds = time.perf_counter() - start
        verify_seconds = 0.0
        if self.verify_each:
            start = time.perf_counter()
            try:
                verify(graph)
            except NNForgeError as exc:
                self._fail(index, p, snapshot, weights, f"IR is invalid after pass '{p.name}': {exc.what}",
                           "this is a bug in the pass; the reproducer holds its input")
            verify_seconds = time.perf_counter() - start
        after = graph_summary(graph)
        record = PassRecord(
            name=p.name, options=options_dict(p), seconds=seconds, verify_seconds=verify_seconds,
            nodes_before=before["nodes"], nodes_after=after["nodes"],
            params_before=before["params"], params_after=after["params"],
            macs_before=before["macs"], macs_after=after["macs"],
            changed=result.changed, stats=dict(result.stats))
        if reference is not None:
            outputs = self._outputs(graph)
            record.max_abs_diff, record.max_rel_diff = max_difference(reference, outputs)
            if p.exact and record.max_rel_diff > EXACT_RTOL:
                self._fail(index, p, snapshot, weights,
                           f"exact pass '{p.name}' changed the outputs: max abs diff "
                           f"{record.max_abs_diff:.3g} (relative {record.max_rel_diff:.3g})",
                           "this is a bug in the pass; the reproducer holds its input")
            reference = outputs
        if self.ir_dump is not None:
            self.ir_dump(p.name, print_graph(graph))
        return record, reference, after

    def _outputs(self, graph: Graph) -> list[torch.Tensor]:
        if self.equivalence_inputs is None:
            raise ValueError("check_equivalence needs equivalence_inputs")
        return interpret(graph, *self.equivalence_inputs)

    def _fail(self, index: int, p: Pass, snapshot: str, weights, what: str, hint: str,
              detail: str = "") -> None:
        try:
            path = write_reproducer(self.reproducer_dir, snapshot, weights, self.passes, index, what, detail)
            saved = f"Reproducer: {path}"
        except (OSError, NNForgeError) as exc:  # the failure matters more than its reproducer
            saved = f"No reproducer: {exc.what if isinstance(exc, NNForgeError) else exc}"
        raise PassFailure(what, where=f"pass {index + 1} of {len(self.passes)} ('{p}')",
                          hint=f"{hint}. {saved}") from None


def max_difference(reference: Sequence[torch.Tensor], outputs: Sequence[torch.Tensor]) -> tuple[float, float]:
    """Max abs difference over all outputs, and the same relative to the outputs' scale."""
    worst_abs, worst_rel = 0.0, 0.0
    for ref, out in zip(reference, outputs):
        if ref.shape != out.shape:
            return float("inf"), float("inf")
        if not ref.is_floating_point():
            diff = float((ref != out).any())
            worst_abs, worst_rel = max(worst_abs, diff), max(worst_rel, diff)
            continue
        ref64, out64 = ref.double(), out.double()
        same = (ref64 == out64) | (ref64.isnan() & out64.isnan())  # NaN where NaN is expected is no difference
        gap = torch.where(same, 0.0, (ref64 - out64).abs()).nan_to_num(nan=math.inf, posinf=math.inf)
        diff = gap.max().item() if ref.numel() else 0.0
        finite = ref64[ref64.isfinite()]
        scale = finite.abs().max().item() if finite.numel() else 0.0
        worst_abs = max(worst_abs, diff)
        worst_rel = max(worst_rel, diff / scale if scale > 0 else diff)
    return worst_abs, worst_rel

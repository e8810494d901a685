"""What every point of a sweep shares, as plain text and bytes: the model, its data, the
evaluation callable and the cost settings.

The model travels as the IR (printed text plus safetensors weights), imported once by the driver:
workers, local or on other machines, parse it instead of re-importing the user's model, and the
bytes hash to the cache key. Nothing here is a pickle of user objects; the evaluation callable
travels as its source text (compiler/evaluation.py).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Sequence

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from compiler.costs import CostSettings
from compiler.evaluation import Evaluator
from compiler.ir import Graph
from compiler.ir_parser import parse_graph
from compiler.printer import print_graph

FORMAT_VERSION = "1"  # bump when what a point computes changes, so old cache entries are not reused


@dataclass(frozen=True)
class Job:
    ir_text: str
    weights: bytes
    inputs: bytes | None = None
    calibration: bytes | None = None
    evaluator: Evaluator | None = None
    settings: CostSettings = CostSettings()
    check_equivalence: bool = False
    key: str = field(default="", compare=False)

    def graph(self) -> Graph:
        """A fresh graph (each point rewrites its own)."""
        return parse_graph(self.ir_text, load_tensors(self.weights))

    def example_inputs(self) -> tuple[torch.Tensor, ...] | None:
        return None if self.inputs is None else _unstack(self.inputs)

    def calibration_batches(self) -> list[tuple[torch.Tensor, ...]] | None:
        if self.calibration is None:
            return None
        flat = load_tensors(self.calibration)
        count = 1 + max(int(k.split(".")[0]) for k in flat)
        return [tuple(flat[k] for k in sorted((k for k in flat if k.split(".")[0] == str(b)),
                                               key=lambda k: int(k.split(".")[1]))) for b in range(count)]

    def point_key(self, point_text: str) -> str:
        return hashlib.sha256(f"{self.key}\n{point_text}".encode()).hexdigest()[:16]


def make_job(graph: Graph, example_inputs: Sequence[torch.Tensor] | None,
             calibration: list[tuple[torch.Tensor, ...]] | None, evaluator: Evaluator | None,
             settings: CostSettings, check_equivalence: bool = False) -> Job:
    text = print_graph(graph)
    weights = save_tensors({name: v.data.detach().contiguous().clone()
                            for name, v in graph.weights.items() if v.data is not None})
    inputs = None if example_inputs is None else save_tensors(
        {str(i): t.detach().contiguous().clone() for i, t in enumerate(example_inputs)})
    calib = None if calibration is None else save_tensors(
        {f"{b}.{i}": t.detach().contiguous().clone() for b, batch in enumerate(calibration) for i, t in enumerate(batch)})
    digest = hashlib.sha256()
    for part in (FORMAT_VERSION, text, weights, inputs, calib, evaluator.fingerprint if evaluator else None,
                 repr(settings), repr(check_equivalence)):
        digest.update(b"\0" if part is None else part if isinstance(part, bytes) else part.encode())
    return Job(text, weights, inputs, calib, evaluator, settings, check_equivalence, key=digest.hexdigest())


def _unstack(data: bytes) -> tuple[torch.Tensor, ...]:
    flat = load_tensors(data)
    return tuple(flat[str(i)] for i in range(len(flat)))

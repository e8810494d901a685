"""The unified cost report: one section per target under shared column names.

The reason one IR sits under several targets is to compare them on the same compiled graph, so
every target reports the same quantity under the same name: `latency_s` is seconds per run of the
compiled batch whether onnxruntime measured it or an FPGA model estimated it. `COLUMNS` is that
vocabulary (docs/costs.md lists it with what each target fills in). The report has a `model`
section (what the graph itself costs: parameters, MACs, weight bits, the IR's accuracy) and one
section per target: the graph's counts, the target's accuracy when an evaluation callable is
given, and what its backend's `Backend.costs(graph, artifact, settings)` returns. Each section's
`basis` says, per column, whether the value was counted, measured, estimated or evaluated, and how.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import torch

from compiler.ir import Graph, Value
from compiler.metrics import graph_summary
from compiler.quant.annotation import QuantAnnotation

if TYPE_CHECKING:
    from compiler.backend import Artifact, Backend
    from compiler.evaluation import Evaluator


@dataclass(frozen=True)
class Column:
    unit: str
    meaning: str


COLUMNS: dict[str, Column] = {
    "batch": Column("samples", "the static batch the graph was compiled for; per-run columns are per batch"),
    "parameters": Column("count", "trainable parameter elements the graph still reads"),
    "macs": Column("count", "multiply-accumulates of one run (one batch)"),
    "weight_bits": Column("bits", "storage of every constant the graph reads: quantized weights at their "
                                  "format's bits (block formats include their shared scales), the rest at "
                                  "their dtype's width"),
    "accuracy": Column("as returned", "what the evaluation callable returns for this target's artifact "
                                      "(model section: for the IR, run by the interpreter)"),
    "latency_s": Column("s", "one run of one batch; measured (onnx, pytorch) or estimated (hls, crossbar)"),
    "throughput_fps": Column("samples/s", "sustained samples per second (measured: batch / latency_s; "
                                          "a pipelined FPGA design: clock / initiation interval)"),
    "energy_j": Column("J", "energy of one run (one batch)"),
    "area_mm2": Column("mm^2", "silicon area of the mapped design"),
    "tiles": Column("count", "crossbar tiles used"),
    "utilisation": Column("fraction", "programmed cells / cells of the tiles used (0..1)"),
    "device": Column("text", "crossbar device preset"),
    "dsp": Column("count", "FPGA DSP slices"),
    "lut": Column("count", "FPGA LUTs"),
    "ff": Column("count", "FPGA flip-flops"),
    "bram_18k": Column("count", "FPGA block RAMs, in 18 Kb blocks"),
    "part": Column("text", "FPGA part"),
    "clock_mhz": Column("MHz", "FPGA clock the estimate assumes"),
    "artifact_bytes": Column("bytes", "size of the artifact's files (or its serialized form)"),
    "runtime": Column("text", "what executed the artifact for measurements and evaluation"),
}
GRAPH_COLUMNS = ("batch", "parameters", "macs", "weight_bits")
SCALAR = (int, float, str, bool, type(None))


@dataclass(frozen=True)
class CostSettings:
    """How measured columns are measured: `threads` for the runtime (1 by default, so numbers do
    not depend on what else the machine runs and parallel sweep points do not compete), the
    median of `runs` timed runs after `warmup` untimed ones."""

    threads: int = 1
    runs: int = 20
    warmup: int = 3

    def __post_init__(self) -> None:
        if self.threads < 1 or self.runs < 1 or self.warmup < 0:
            raise ValueError(f"cost settings need threads >= 1, runs >= 1, warmup >= 0; got {self}")

    def describe(self) -> str:
        return f"{self.threads} thread{'s' if self.threads > 1 else ''}, median of {self.runs} runs"


def median_seconds(fn: Callable[[], Any], settings: CostSettings) -> float:
    """The median wall time of `fn()` over `settings.runs` runs, after the warm-up runs."""
    for _ in range(settings.warmup):
        fn()
    times = []
    for _ in range(settings.runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def weight_bits(graph: Graph) -> int:
    """Bits of every constant the graph reads (see COLUMNS["weight_bits"])."""
    covered: set[str] = set()      # scales that a block format's storage bits already include
    quantized: dict[int, float] = {}
    for node in graph.nodes:
        for out in node.outputs:
            ann = out.annotation(QuantAnnotation)
            if node.op == "fake_quant" and ann is not None and ann.role == "weight" and node.inputs[0].is_constant:
                spec = ann.spec()
                quantized[id(node.inputs[0])] = spec.storage_bits
                if getattr(spec, "kind", "") == "block":
                    covered.update(ann.references())
    total = 0.0
    for value in graph.weights.values():
        if not value.users or value.name in covered:
            continue
        ann = value.annotation(QuantAnnotation)
        if ann is not None and ann.role == "weight":
            bits = ann.spec().storage_bits
        else:
            bits = quantized.get(id(value), _dtype_bits(value))
        total += value.type.numel * bits
    return int(math.ceil(total))


def _dtype_bits(value: Value) -> int:
    dtype = value.dtype
    return 1 if dtype == torch.bool else torch.empty((), dtype=dtype).element_size() * 8


def graph_costs(graph: Graph) -> dict[str, Any]:
    """The counts every section shares."""
    summary = graph_summary(graph)
    batch = graph.inputs[0].shape[0] if graph.inputs and graph.inputs[0].shape else 1
    return {"batch": batch, "parameters": summary["params"], "macs": summary["macs"],
            "weight_bits": weight_bits(graph)}


@dataclass
class CostReport:
    """`model`: the graph's own section; `targets`: one section per target, by target name."""

    model: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        used = {k for section in (self.model, *self.targets.values()) for k in section if k in COLUMNS}
        return {"model": self.model, "targets": self.targets,
                "columns": {k: {"unit": c.unit, "meaning": c.meaning} for k, c in COLUMNS.items() if k in used}}

    def flat(self) -> dict[str, Any]:
        """One flat row: the model's columns, then `<target>.<column>` for what a target adds or
        differs in (a sweep's table row)."""
        row = {k: v for k, v in self.model.items() if k not in ("basis", "name")}
        for name, section in self.targets.items():
            for key, value in section.items():
                if key in ("basis", "target") or (key in GRAPH_COLUMNS and row.get(key) == value):
                    continue
                row[f"{name}.{key}"] = value
        return row


def check_section(backend: "Backend", section: Any) -> dict[str, Any]:
    """A backend's `costs()` result checked: a dict of scalar columns plus an optional `basis`."""
    if not isinstance(section, dict):
        raise TypeError(f"{type(backend).__name__}.costs() returned {type(section).__name__}, not a dict")
    for key, value in section.items():
        if key == "basis":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise TypeError(f"{type(backend).__name__}.costs(): 'basis' maps column names to text")
        elif not isinstance(value, SCALAR):
            raise TypeError(f"{type(backend).__name__}.costs(): column '{key}' is a {type(value).__name__}; "
                            "columns hold numbers, text or None")
    return section


def ordered(section: dict[str, Any]) -> dict[str, Any]:
    """Shared columns in COLUMNS order, then the rest (evaluation metrics, target extras) as given."""
    head = [k for k in ("name", "target") if k in section]
    known = [k for k in COLUMNS if k in section]
    rest = [k for k in section if k not in COLUMNS and k not in head and k != "basis"]
    return {k: section[k] for k in head + known + rest + (["basis"] if "basis" in section else [])}


def cost_report(graph: Graph, backends: list["Backend"], artifacts: list["Artifact"],
                evaluator: "Evaluator | None" = None, settings: CostSettings = CostSettings()) -> CostReport:
    """Count, measure, estimate and evaluate: the IR's section, then each target's."""
    from compiler.interpreter import interpret

    shared = graph_costs(graph)
    model: dict[str, Any] = {"name": graph.name, **shared}
    basis = {k: "counted from the IR" for k in shared}
    if evaluator is not None:
        metrics = evaluator(lambda *xs: interpret(graph, *xs), graph)
        model.update(metrics)
        basis.update({k: f"evaluated by {evaluator.spec} on the IR (nnforge interpreter)" for k in metrics})
    model["basis"] = basis
    report = CostReport(ordered(model))
    for backend, artifact in zip(backends, artifacts):
        section: dict[str, Any] = {"target": str(backend), **shared}
        section_basis = dict(basis if evaluator is None else {k: basis[k] for k in shared})
        if evaluator is not None:
            if artifact.runner is None:
                section_basis["accuracy"] = "not evaluated: this artifact cannot run here"
            else:
                metrics = evaluator(artifact.run, graph)
                section.update(metrics)
                engine = getattr(artifact.runner, "engine", "") or backend.name
                section_basis.update({k: f"evaluated by {evaluator.spec} on {engine}" for k in metrics})
        own = check_section(backend, backend.costs(graph, artifact, settings))
        section_basis.update(own.pop("basis", {}))
        section.update(own)
        section["basis"] = section_basis
        report.targets[backend.name] = ordered(section)
    return report

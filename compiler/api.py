"""`compile()`: model in, verified IR through a pipeline, artifact out."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from compiler import calibration
from compiler.backend import Artifact, Backend, merge_target
from compiler.context import PassContext, TargetDescription
from compiler.errors import PipelineError
from compiler.frontend import import_model
from compiler.interpreter import interpret
from compiler.ir import Graph
from compiler.manager import PassManager, max_difference
from compiler.metrics import graph_summary
from compiler.passes import Pass
from compiler.pipeline import Pipeline, load_pipeline, parse_target
from compiler.report import Report


@dataclass
class CompileResult:
    graph: Graph
    artifact: Artifact | None
    report: Report
    artifacts: list[Artifact] = field(default_factory=list)


def compile(model: Any, example_inputs: Sequence[torch.Tensor] | torch.Tensor | None = None,
            pipeline: str | Path | Pipeline | Sequence[Pass] = "",
            target: str | Backend | Sequence[str | Backend] | None = None,
            output: str | Path | Sequence[str | Path] | None = None, *, input_shapes: Sequence[tuple[int, ...]] | None = None,
            verify_each: bool = True, check_equivalence: bool = False,
            print_ir_after_all: bool = False, ir_dump: Callable[[str, str], None] | None = None,
            reproducer_dir: str | Path | None = None,
            on_pass: Callable[[int, Pass], None] | None = None,
            calibration_data: Any = None, seed: int = 0, threads: int | None = None) -> CompileResult:
    """Import `model`, run `pipeline` on it, and lower it to `target` (written to `output`).

    `pipeline` is inline text, a pipeline file, a parsed Pipeline, or a list of pass instances.
    `target` may also be a list of targets with a matching list of outputs; `artifact` is then
    the first one and `report.artifacts` lists them all.
    With `check_equivalence`, every pass and the final artifact are compared numerically with
    the graph before them on the example inputs (or random ones).
    `calibration_data` (a tensor, a list of tensors or an iterable of batches) feeds passes that
    calibrate (quantize); by default they calibrate on the example inputs. `seed` and `threads`
    go to every pass through its `PassContext`, with the targets' hardware description.
    """
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    report = Report()
    started = time.perf_counter()
    graph = import_model(model, example_inputs, input_shapes)
    report.seconds["import"] = time.perf_counter() - started
    report.model = {"name": graph.name, "before": graph_summary(graph)}

    parsed = _as_pipeline(pipeline)
    backends = _as_backends(target, parsed.target)
    outputs = _as_outputs(output, len(backends))
    inputs = tuple(example_inputs) if example_inputs is not None else random_inputs(graph)
    if print_ir_after_all and ir_dump is None:
        ir_dump = _dump_to_stderr
    source = "user data" if calibration_data is not None else \
        "example inputs" if example_inputs is not None else "generated inputs"
    hardware = TargetDescription()
    for backend in backends:
        hardware = backend.describe_target(hardware)
    context = PassContext(calibration=calibration.validated(
        graph, calibration_data if calibration_data is not None else inputs, source=source),
        seed=seed, threads=threads, target=hardware)
    manager = PassManager(parsed.passes, verify_each=verify_each, check_equivalence=check_equivalence,
                          equivalence_inputs=inputs, ir_dump=ir_dump,
                          reproducer_dir=Path(reproducer_dir) if reproducer_dir else None, on_pass=on_pass,
                          context=context)
    report.passes = manager.run(graph)
    report.seconds["passes"] = sum(p.seconds for p in report.passes)
    report.seconds["verify"] = sum(p.verify_seconds for p in report.passes)
    report.model["after"] = graph_summary(graph)

    artifacts = []
    expected = interpret(graph, *inputs) if check_equivalence and backends else None
    for backend, out in zip(backends, outputs):
        start = time.perf_counter()
        artifact = backend.lower_in(graph, out, context)
        row = {"target": str(backend), "output": str(out) if out is not None else None,
               "seconds": time.perf_counter() - start, "files": [str(f) for f in artifact.files],
               "info": artifact.info}
        if expected is not None and artifact.runner is not None:
            row["max_abs_diff"], row["max_rel_diff"] = max_difference(expected, artifact.run(*inputs))
        artifacts.append(artifact)
        report.artifacts.append(row)
    if len(backends) == 1:
        report.target, report.output = report.artifacts[0]["target"], report.artifacts[0]["output"]
    elif backends:
        report.target = [row["target"] for row in report.artifacts]
        report.output = [row["output"] for row in report.artifacts]
    report.seconds["lower"] = sum(row["seconds"] for row in report.artifacts)
    report.seconds["total"] = time.perf_counter() - started
    return CompileResult(graph, artifacts[0] if artifacts else None, report, artifacts)


def random_inputs(graph: Graph, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Inputs of the graph's types: normal floats, zero integers (valid indices)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for v in graph.inputs:
        if v.dtype.is_floating_point:
            out.append(torch.randn(v.shape, generator=gen).to(v.dtype))
        else:
            out.append(torch.zeros(v.shape, dtype=v.dtype))
    return tuple(out)


def _as_pipeline(pipeline: str | Path | Pipeline | Sequence[Pass]) -> Pipeline:
    if isinstance(pipeline, Pipeline):
        return pipeline
    if isinstance(pipeline, (str, Path)):
        return load_pipeline(pipeline) if str(pipeline).strip() else Pipeline()
    passes = tuple(pipeline)
    if not all(isinstance(p, Pass) for p in passes):
        raise PipelineError("pipeline must be text, a file, a Pipeline, or a list of Pass instances")
    return Pipeline(passes)


def _as_backends(target, from_pipeline: Backend | None) -> list[Backend]:
    """Targets given here (`onnx`, `onnx{opset=21}` or Backend instances), each merged with the
    pipeline's own target line; without any, the pipeline's target."""
    if target is None:
        return [from_pipeline] if from_pipeline is not None else []
    targets = [target] if isinstance(target, (str, Backend)) else list(target)
    return [merge_target(t if isinstance(t, Backend) else parse_target(t), from_pipeline) for t in targets]


def _as_outputs(output, count: int) -> list[Path | None]:
    if output is None:
        return [None] * count
    outputs = [output] if isinstance(output, (str, Path)) else list(output)
    if len(outputs) != count:
        raise PipelineError(f"{count} target(s) need {count} output path(s), got {len(outputs)}")
    return [Path(o) for o in outputs]


def _dump_to_stderr(pass_name: str, text: str) -> None:
    print(f"// ----- IR after {pass_name} -----\n{text}", file=sys.stderr)

"""`compile()`: model in, verified IR through a pipeline, artifact out."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from compiler import calibration, memory
from compiler.atomic import transaction
from compiler.backend import Artifact, Backend, all_backends, merge_target
from compiler.context import PassContext, TargetDescription
from compiler.errors import FrontendError, NNForgeError, PipelineError, UserInputError
from compiler.frontend import import_with_facts
from compiler.interpreter import interpret
from compiler.ir import Graph
from compiler.manager import PassManager, max_difference
from compiler.metrics import graph_summary
from compiler.passes import Pass
from compiler.pipeline import Pipeline, load_pipeline, parse_target
from compiler.report import Report


RANDOM = "random"                     # calibration_data="random": generated inputs, on purpose
RANDOM_SOURCE = "generated inputs"    # N(0, 1) floats, zero integers (random_inputs)


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
            calibration_data: Any = None, capture: str = "auto", seed: int = 0,
            threads: int | None = None) -> CompileResult:
    """Import `model`, run `pipeline` on it, and lower it to `target` (written to `output`).

    `pipeline` is inline text, a pipeline file, a parsed Pipeline, or a list of pass instances.
    `target` may also be a list of targets with a matching list of outputs; `artifact` is then
    the first one and `report.artifacts` lists them all.
    With `check_equivalence`, every pass and the final artifact are compared numerically with
    the graph before them on the example inputs (or random ones).
    `calibration_data` (a tensor, a list of tensors or an iterable of batches) feeds passes that
    calibrate (quantize); by default they calibrate on the example inputs, and `"random"` asks for
    generated inputs on purpose. Calibrating on generated inputs is a warning in the report, and
    the report says which inputs the equivalence checks ran on. `seed` and `threads` go to every
    pass through its `PassContext`, with the targets' hardware description.
    `capture` chooses how an nn.Module is captured: "auto" (torch.export, falling back to
    torch.fx), "export" or "fx"; `report.model["import"]` says which one did and why.
    Without a target, a pipeline file's `target` line or the output's suffix (`.onnx`) names it.
    All outputs are committed together once every lowering and check succeeded
    (`compiler.atomic.transaction`); memory is bounded by `compiler.memory`, and random inputs are
    generated only when a pass or a check needs them.
    """
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    report = Report()
    started = time.perf_counter()
    imported = import_with_facts(model, example_inputs, input_shapes, capture=capture)
    graph = imported.graph
    report.seconds["import"] = time.perf_counter() - started
    report.model = {"name": graph.name, "import": imported.facts, "before": graph_summary(graph)}
    if graph.interface is not None and graph.interface.notes:
        report.model["notes"] = list(graph.interface.notes)  # what the import changed
    if not graph.outputs:
        raise FrontendError(f"graph '{graph.name}' has no outputs", hint="a model must return at least one tensor")

    parsed = _as_pipeline(pipeline)
    backends = _as_backends(target if target is not None or parsed.target is not None else _target_for(output),
                            parsed.target)
    outputs = _as_outputs(output, len(backends))
    random = isinstance(calibration_data, str) and calibration_data == RANDOM
    if isinstance(calibration_data, str) and not random:
        raise UserInputError(f"calibration_data '{calibration_data}' is neither data nor '{RANDOM}'",
                             hint="pass arrays (an .npy/.npz file on the command line), or 'random' on purpose")
    user_data = None if random or calibration_data is None else \
        calibration.batches(graph, calibration_data, calibration.EAGER_LIMIT)
    inputs, report.equivalence_inputs = _equivalence_inputs(graph, example_inputs, user_data, check_equivalence)
    if print_ir_after_all and ir_dump is None:
        ir_dump = _dump_to_stderr
    source = "user data" if user_data is not None else "example inputs" if example_inputs is not None and \
        not random else RANDOM_SOURCE
    data = user_data if user_data is not None else random_inputs(graph) if random else \
        inputs if inputs is not None else GeneratedInputs(graph)
    hardware = TargetDescription()
    for backend in backends:
        hardware = backend.describe_target(hardware)
    lazy = isinstance(data, GeneratedInputs)  # validated (and generated) only when a pass reads it
    context = PassContext(calibration=calibration.Calibration(data, source) if lazy else
                          calibration.validated(graph, data, source=source), seed=seed,
                          threads=threads, target=hardware, targets=tuple(backends))
    manager = PassManager(parsed.passes, verify_each=verify_each, check_equivalence=check_equivalence,
                          equivalence_inputs=inputs, ir_dump=ir_dump,
                          reproducer_dir=Path(reproducer_dir) if reproducer_dir else None, on_pass=on_pass,
                          context=context)
    report.passes = manager.run(graph)
    if any(p.stats.get("calibration.source") == RANDOM_SOURCE for p in report.passes):
        report.warnings.append(f"calibrated on {RANDOM_SOURCE}: ranges fitted to noise, not to the data the "
                               "model will see; pass real calibration data (--calibration-data FILE.npy|.npz)")
    report.seconds["passes"] = sum(p.seconds for p in report.passes)
    report.seconds["verify"] = sum(p.verify_seconds for p in report.passes)
    report.model["after"] = graph_summary(graph)

    artifacts = []
    expected = interpret(graph, *inputs) if check_equivalence and backends else None
    with transaction():  # every output, or none: moved into place only after all lowerings and checks
        for backend, out in zip(backends, outputs):
            start = time.perf_counter()
            artifact = backend.lower_in(graph, out, context)
            row = {"target": str(backend), "output": str(out) if out is not None else None,
                   "seconds": time.perf_counter() - start, "files": [str(f) for f in artifact.files],
                   "info": artifact.info}
            if expected is not None and artifact.runner is not None:
                row.update(_check_artifact(artifact, inputs, expected))
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


def _equivalence_inputs(graph: Graph, example_inputs, user_data,
                        checking: bool) -> tuple[tuple[torch.Tensor, ...] | None, str]:
    """The inputs equivalence checks run on, and what they are: the example inputs, else the first
    calibration batch (real data), else generated ones (only when a check will run)."""
    if example_inputs is not None:
        return tuple(example_inputs), "example inputs"
    if user_data:
        return tuple(user_data[0]), "calibration data, batch 0"
    if not checking:
        return None, "none (no check ran)"
    return random_inputs(graph), f"{RANDOM_SOURCE} (no example inputs or calibration data)"


def _check_artifact(artifact: Artifact, inputs, expected) -> dict:
    """The artifact's outputs against the IR's; a runtime that cannot execute it skips the check
    with the reason, never a traceback."""
    try:
        outputs = artifact.run(*inputs)
    except NNForgeError:
        raise
    except Exception as exc:  # noqa: BLE001 - a third-party runtime refusing the model
        text = (str(exc).strip().splitlines() or [""])[0]
        return {"equivalence": f"skipped: {type(exc).__name__}: {text}"}
    row: dict[str, Any] = {}
    row["max_abs_diff"], row["max_rel_diff"] = max_difference(expected, outputs)
    engine = getattr(artifact.runner, "engine", "")
    if engine:
        row["runtime"] = engine
    return row


def random_inputs(graph: Graph, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Inputs of the graph's types: normal floats, zero integers (valid indices)."""
    memory.check(sum(memory.tensor_bytes(v.shape, v.dtype) for v in graph.inputs), "random example inputs")
    gen = torch.Generator().manual_seed(seed)
    out = []
    for v in graph.inputs:
        if v.dtype.is_floating_point:
            out.append(torch.randn(v.shape, generator=gen).to(v.dtype))
        else:
            out.append(torch.zeros(v.shape, dtype=v.dtype))
    return tuple(out)


class GeneratedInputs:
    """Random inputs for calibrating passes, generated only when a pass iterates them."""

    def __init__(self, graph: Graph):
        self.graph = graph

    def __iter__(self):
        yield random_inputs(self.graph)


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


def _target_for(output) -> str | None:
    """The target an output path's suffix names (`model.onnx` -> onnx), when no target is given."""
    if output is None:
        return None
    if not isinstance(output, (str, Path)):
        raise PipelineError("several outputs need their targets named", hint="pass target=[...]")
    suffix = Path(output).suffix.lower()
    for name, cls in all_backends().items():
        if cls.suffix and cls.suffix == suffix:
            return name
    raise PipelineError(f"no target given for output '{output}', and its suffix names none",
                        hint="name one: --target pytorch (writes a folder) or --target onnx (a .onnx file)")


def _as_outputs(output, count: int) -> list[Path | None]:
    if output is None:
        return [None] * count
    outputs = [output] if isinstance(output, (str, Path)) else list(output)
    if len(outputs) != count:
        raise PipelineError(f"{count} target(s) need {count} output path(s), got {len(outputs)}")
    return [Path(o) for o in outputs]


def _dump_to_stderr(pass_name: str, text: str) -> None:
    print(f"// ----- IR after {pass_name} -----\n{text}", file=sys.stderr)

"""One sweep point, wherever it runs: compile, lower, cost, evaluate; never raise.

A point that fails (a pass refuses its options, the evaluation callable raises) comes back as a
failed result with its error; the sweep goes on. When only some targets fail (one cannot carry the
point's number format), each target is compiled on its own: the point is `partial`, with the
columns of the targets that worked and the others' errors. Artifacts are written to a scratch
folder and come back as bytes, so a worker on another machine needs no shared filesystem.
"""
from __future__ import annotations

import json
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from compiler.errors import NNForgeError
from compiler.sweep.job import Job
from compiler.sweep.spec import Point

OK, PARTIAL, FAILED, CRASHED = "ok", "partial", "failed", "crashed"


@dataclass
class PointResult:
    """`metrics`: the point's flat cost row; `seconds`/`cpu_seconds`: its wall and CPU time (the
    gap is time the worker waited for a core); `files`: artifact path (relative to the point's
    folder) -> bytes; `detail`: a traceback when the failure was not a user error."""

    key: str
    status: str
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    detail: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    attempts: int = 1
    cpu_seconds: float = 0.0


def artifact_name(backend) -> str:
    return f"model{backend.suffix}" if backend.suffix else backend.name


def run_point(job: Job, point: Point) -> PointResult:
    start, cpu = time.perf_counter(), time.process_time()
    key = job.point_key(point.text)
    result = _run(job, point, key, start)
    result.cpu_seconds = time.process_time() - cpu
    return result


def _run(job: Job, point: Point, key: str, start: float) -> PointResult:
    from compiler.pipeline import parse_pipeline

    try:
        torch.set_num_threads(job.settings.threads)
        pipeline = parse_pipeline(point.pipeline)
        backends = [parse_pipeline(f"target {t}").target for t in point.targets]
        with tempfile.TemporaryDirectory(prefix="nnforge-point-") as scratch:
            root = Path(scratch)
            costs, errors = _compile_all(job, pipeline, backends, root)
            files = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
        error = "\n".join(f"target {name}: {text}" for name, text in errors.items())
        return PointResult(key, PARTIAL if errors else OK, time.perf_counter() - start, costs.flat(), error=error,
                           files=files)
    except NNForgeError as exc:
        return PointResult(key, FAILED, time.perf_counter() - start, error=exc.render())
    except Exception as exc:  # noqa: BLE001 - a bug or a third-party failure in one point is that point's result
        return PointResult(key, FAILED, time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}",
                           detail=traceback.format_exc())


def _compile_all(job: Job, pipeline, backends: list, root: Path):
    """The point's cost report and the errors of targets that failed on their own."""
    try:
        return _compile(job, pipeline, backends, root), {}
    except NNForgeError:
        if len(backends) < 2:
            raise
    merged, errors, first_error = None, {}, None
    for backend in backends:  # which of them fail, each compiled on its own
        try:
            costs = _compile(job, pipeline, [backend], root, suffix=f".{backend.name}")
        except NNForgeError as exc:
            errors[backend.name] = exc.render()
            first_error = first_error or exc
            continue
        if merged is None:
            merged = costs
        else:
            merged.targets.update(costs.targets)
    if merged is None:
        raise first_error
    return merged, errors


def _compile(job: Job, pipeline, backends: list, root: Path, suffix: str = ""):
    from compiler.api import compile
    from compiler.costs import cost_report

    outputs = [root / artifact_name(b) for b in backends]
    result = compile(job.graph(), job.example_inputs(), pipeline, target=backends, output=outputs,
                     calibration_data=job.calibration_batches(), check_equivalence=job.check_equivalence)
    costs = cost_report(result.graph, backends, result.artifacts, job.evaluator, job.settings)
    (root / f"costs{suffix}.json").write_text(json.dumps(costs.to_dict(), indent=2, default=str) + "\n")
    (root / f"report{suffix}.json").write_text(result.report.to_json() + "\n")
    return costs

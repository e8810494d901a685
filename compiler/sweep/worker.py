"""One sweep point, wherever it runs: compile, lower, cost, evaluate; never raise.

A point that fails (a pass refuses its options, a target cannot carry its format, the evaluation
callable raises) comes back as a failed result with its error; the sweep goes on. Artifacts are
written to a scratch folder and come back as bytes, so a worker on another machine needs no
shared filesystem.
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

OK, FAILED, CRASHED = "ok", "failed", "crashed"


@dataclass
class PointResult:
    """`metrics`: the point's flat cost row; `files`: artifact path (relative to the point's
    folder) -> bytes; `detail`: a traceback when the failure was not a user error."""

    key: str
    status: str
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    detail: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    attempts: int = 1


def artifact_name(backend) -> str:
    return f"model{backend.suffix}" if backend.suffix else backend.name


def run_point(job: Job, point: Point) -> PointResult:
    from compiler.api import compile
    from compiler.costs import cost_report
    from compiler.pipeline import parse_pipeline

    start = time.perf_counter()
    key = job.point_key(point.text)
    try:
        torch.set_num_threads(job.settings.threads)
        pipeline = parse_pipeline(point.pipeline)
        backends = [parse_pipeline(f"target {t}").target for t in point.targets]
        with tempfile.TemporaryDirectory(prefix="nnforge-point-") as scratch:
            root = Path(scratch)
            outputs = [root / artifact_name(b) for b in backends]
            result = compile(job.graph(), job.example_inputs(), pipeline, target=backends, output=outputs,
                             calibration_data=job.calibration_batches(), check_equivalence=job.check_equivalence)
            costs = cost_report(result.graph, backends, result.artifacts, job.evaluator, job.settings)
            (root / "costs.json").write_text(json.dumps(costs.to_dict(), indent=2, default=str) + "\n")
            (root / "report.json").write_text(result.report.to_json() + "\n")
            files = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
        return PointResult(key, OK, time.perf_counter() - start, costs.flat(), files=files)
    except NNForgeError as exc:
        return PointResult(key, FAILED, time.perf_counter() - start, error=exc.render())
    except Exception as exc:  # noqa: BLE001 - a bug or a third-party failure in one point is that point's result
        return PointResult(key, FAILED, time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}",
                           detail=traceback.format_exc())

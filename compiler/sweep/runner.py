"""`run_sweep()`: import the model once, compile, cost and evaluate every point of a sweep spec on an
executor, keep each finished point on disk, and write the table and the HTML report."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from compiler import calibration as calib
from compiler.context import DEFAULT_CONTEXT
from compiler.costs import CostSettings
from compiler.errors import UserInputError
from compiler.evaluation import Evaluator, load_evaluator
from compiler.frontend import import_model
from compiler.sweep.job import make_job
from compiler.sweep.plots import require_matplotlib
from compiler.sweep.spec import Point, load_sweep
from compiler.sweep.store import PointStore
from compiler.sweep.table import make_rows, write_outputs
from compiler.sweep.worker import OK, PointResult

Progress = Callable[[int, int, Point, PointResult, bool], None]  # done, total, point, result, from cache


@dataclass
class SweepResult:
    rows: list[dict[str, Any]]
    columns: list[str]
    paths: dict[str, Path]          # csv, json, html
    computed: int                   # points run now (the rest came from the cache)
    seconds: dict[str, float]       # wall time: import (model, data), points (the executor), report, total

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] != OK]


def run_sweep(model: Any, spec: str | Path, output: str | Path, *,
              example_inputs: Sequence[torch.Tensor] | None = None,
              input_shapes: Sequence[tuple[int, ...]] | None = None, capture: str = "auto",
              targets: Sequence[str] = (), calibration_data: Any = None,
              evaluate: str | Evaluator | None = None, executor: str = "local", workers: int | None = None,
              address: str | None = None, settings: CostSettings = CostSettings(),
              check_equivalence: bool = False, retry_failed: bool = False,
              on_point: Progress | None = None) -> SweepResult:
    """Run every point of `spec` (sweep text or file) on `model` (anything `compile()` takes).

    `targets` join the spec's own target lines. `evaluate` (`file.py:evaluate`, or an Evaluator)
    adds accuracy columns. `executor` is "local" (`workers` processes, default: one per CPU) or
    "ray" (`address` of a cluster; none starts a local Ray instance with `workers` CPUs). Finished
    points are kept under `output/points/` and not computed again; `retry_failed` recomputes the
    points that failed last time. `on_point` hears about every point as it finishes.
    """
    started = time.perf_counter()
    if Path(output).exists() and not Path(output).is_dir():
        raise UserInputError(f"sweep output '{output}' is a file", hint="name a folder (it is created if missing)")
    points = load_sweep(spec, targets)
    require_matplotlib()
    chosen = _executor(executor, workers, address)
    evaluator = load_evaluator(evaluate) if isinstance(evaluate, str) else evaluate
    if isinstance(calibration_data, str):
        raise UserInputError(f"calibration data '{calibration_data}' is not data",
                             hint="a sweep calibrates on real inputs: pass arrays (an .npy/.npz file on the "
                                  "command line), or leave it out to calibrate on the example inputs")
    timer = time.perf_counter()
    with DEFAULT_CONTEXT.torch_threads(parallel=False):  # small ops: a thread pool only waits on a busy host
        graph = import_model(model, example_inputs, input_shapes, capture=capture)
    batches = None if calibration_data is None else calib.batches(graph, calibration_data, calib.EAGER_LIMIT)
    job = make_job(graph, example_inputs, batches, evaluator, settings, check_equivalence)

    store = PointStore(Path(output))
    results: dict[int, PointResult] = {}
    done_count = 0

    def finished(point: Point, result: PointResult, cached: bool = False) -> None:
        nonlocal done_count
        if not cached:
            store.save(result, point.label, point.text)
        results[point.index] = result
        done_count += 1
        if on_point is not None:
            on_point(done_count, len(points), point, result, cached)

    pending = []
    for point in points:
        stored = store.load(job.point_key(point.text), retry_failed)
        if stored is None:
            pending.append(point)
        else:
            finished(point, stored, cached=True)
    seconds = {"import": time.perf_counter() - timer}
    timer = time.perf_counter()
    if pending:
        job.graph()  # the IR parses back before any worker tries (and forked workers inherit the parser)
        chosen.run(job, pending, finished)
    seconds["points"] = time.perf_counter() - timer
    timer = time.perf_counter()
    ordered = [results[p.index] for p in points]
    rows, columns = make_rows(points, ordered)
    files = {r.key: store.files(r.key) for r in ordered}
    spec_text = Path(spec).read_text() if _is_file(spec) else str(spec)
    paths = write_outputs(Path(output), f"nnforge sweep: {graph.name}", spec_text, rows, columns, files)
    seconds.update(report=time.perf_counter() - timer, total=time.perf_counter() - started)
    return SweepResult(rows, columns, paths, len(pending), seconds)


def _executor(name: str, workers: int | None, address: str | None):
    if workers is not None and workers < 1:
        raise UserInputError(f"--workers must be at least 1, got {workers}")
    if name == "local":
        from compiler.sweep.local import LocalExecutor
        if address:
            raise UserInputError("--address names a Ray cluster", hint="add --executor ray")
        return LocalExecutor(workers or os.cpu_count() or 1)
    if name == "ray":
        from compiler.sweep.ray_executor import RayExecutor
        return RayExecutor(address, workers)
    raise UserInputError(f"unknown executor '{name}'", hint="use --executor local (default) or --executor ray")


def _is_file(spec: str | Path) -> bool:
    return isinstance(spec, Path) or ("\n" not in str(spec) and Path(str(spec)).is_file())

"""`nnforge report` (one configuration, every target, one cost table) and `nnforge sweep` (many
configurations, a table and an HTML report of Pareto fronts)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.markup import escape

from compiler.errors import PipelineError, UserInputError
from compiler.pipeline import split_targets


def add_commands(sub, common: argparse.ArgumentParser, model_args: Callable[[argparse.ArgumentParser], None]) -> None:
    report = sub.add_parser("report", parents=[common],
                            help="compile to targets and print the unified cost report (docs/costs.md)")
    model_args(report)
    report.add_argument("--pipeline", default="", metavar="SPEC_OR_FILE", help="inline pipeline or a pipeline file")
    _target_args(report, "targets to lower to and cost (onnx, 'onnx{opset=21}', pytorch, or all); "
                         "default: the pipeline file's target")
    report.add_argument("-o", "--output", type=Path, default=None, metavar="DIR",
                        help="write the artifacts, report.json and costs.json here")
    report.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the cost report as JSON here")
    report.add_argument("--check-equivalence", action="store_true",
                        help="compare outputs before/after every pass and of every artifact with the IR")
    report.set_defaults(command="report", run=_cmd_report)

    sweep = sub.add_parser("sweep", parents=[common],
                           help="compile, cost and evaluate every point of a sweep spec (docs/sweeps.md)")
    model_args(sweep)
    sweep.add_argument("--pipeline", required=True, metavar="SPEC_OR_FILE",
                       help="pipeline text or file whose options may be sweep[...] axes; `---` lines separate "
                            "alternatives")
    _target_args(sweep, "targets every point also lowers to, besides the spec's target lines")
    sweep.add_argument("-o", "--output", type=Path, required=True, metavar="DIR",
                       help="where points/, sweep.csv, sweep.json and report.html go; finished points found "
                            "here are not computed again")
    sweep.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="local worker processes (default) or Ray tasks")
    sweep.add_argument("--workers", type=int, default=None,
                       help="local worker processes (default: one per CPU); with Ray and no --address, the "
                            "CPUs of the local Ray instance")
    sweep.add_argument("--address", default=None, help="the Ray cluster to run on (host:port, ray://host:port, auto)")
    sweep.add_argument("--retry-failed", action="store_true", help="compute the points that failed last time again")
    sweep.add_argument("--check-equivalence", action="store_true", help="check every artifact against the IR")
    sweep.set_defaults(command="sweep", run=_cmd_sweep)


def _target_args(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--targets", "--target", dest="targets", default=None, help=help_text)
    p.add_argument("--eval", default=None, metavar="FILE.py:FUNCTION",
                   help="evaluate(predict) -> accuracy (or a dict of metrics), run on the IR and every artifact")
    p.add_argument("--calibration-data", default=None, metavar="FILE.npy|.npz",
                   help="real input batches for passes that calibrate (required by them)")
    p.add_argument("--runs", type=int, default=20, help="timed runs per latency measurement (median; default 20)")
    p.add_argument("--threads", type=int, default=1, help="threads of the measured runtimes (default 1)")


def _settings(args):
    from compiler.costs import CostSettings

    try:
        return CostSettings(threads=args.threads, runs=args.runs)
    except ValueError as exc:
        raise UserInputError(str(exc), hint="--threads and --runs take positive integers") from None


def _backends(targets: list[str], pipeline_target) -> list:
    """Target instances: `all` is every registered target; a target the pipeline file names keeps
    that line's options."""
    from compiler.backend import all_backends, merge_target
    from compiler.pipeline import parse_target

    if not targets:
        if pipeline_target is None:
            raise UserInputError("no target to report on", hint="add --targets onnx,pytorch (or all)")
        return [pipeline_target]
    if targets == ["all"]:
        targets = list(all_backends())
    backends = []
    for text in targets:
        backend = merge_target(parse_target(text), pipeline_target)
        if any(b.name == backend.name for b in backends):
            raise PipelineError(f"target '{backend.name}' is named twice in --targets")
        backends.append(backend)
    return backends


def _cmd_report(args) -> int:
    from compiler.api import compile
    from compiler.cli import _calibration_data, _load, _stdout_console
    from compiler.cli_render import print_report, progress
    from compiler.cost_render import print_costs
    from compiler.costs import cost_report
    from compiler.evaluation import load_evaluator
    from compiler.pipeline import load_pipeline
    from compiler.sweep.worker import artifact_name

    settings = _settings(args)
    pipeline = load_pipeline(args.pipeline) if args.pipeline.strip() else None
    backends = _backends(split_targets(args.targets or ""), pipeline.target if pipeline else None)
    evaluator = load_evaluator(args.eval) if args.eval else None
    loaded, inputs, shapes, _ = _load(args)
    calibration_data = _calibration_data(args)
    outputs = [args.output / artifact_name(b) for b in backends] if args.output else None
    with progress(Console(stderr=True)) as on_pass:
        result = compile(loaded.model, example_inputs=inputs, pipeline=pipeline or "", target=backends,
                         output=outputs, input_shapes=shapes, check_equivalence=args.check_equivalence,
                         on_pass=on_pass, calibration_data=calibration_data, capture=args.capture)
    costs = cost_report(result.graph, backends, result.artifacts, evaluator, settings)
    console = _stdout_console()
    print_report(console, result.report)
    print_costs(console, costs)
    text = json.dumps(costs.to_dict(), indent=2, default=str) + "\n"
    for path in ([args.output / "costs.json"] if args.output else []) + ([args.json] if args.json else []):
        _write(path, text)
    if args.output:
        result.report.write(args.output / "report.json")
    return 0


def _cmd_sweep(args) -> int:
    from compiler.cli import _calibration_data, _load
    from compiler.pipeline import parse_pipeline
    from compiler.sweep import run_sweep
    from compiler.sweep.spec import load_sweep

    from compiler.backend import all_backends

    settings = _settings(args)
    targets = split_targets(args.targets or "")
    targets = list(all_backends()) if targets == ["all"] else targets
    points = load_sweep(args.pipeline, targets)
    passes = {str(p): p for point in points for p in parse_pipeline(point.pipeline).passes}
    loaded, inputs, shapes, _ = _load(args)
    calibration_data = _calibration_data(args, list(passes.values()))
    err = Console(stderr=True, highlight=False)
    with _progress(err, len(points)) as on_point:
        result = run_sweep(loaded.model, args.pipeline, args.output, example_inputs=inputs, input_shapes=shapes,
                           capture=args.capture, targets=targets,
                           calibration_data=calibration_data, evaluate=args.eval, executor=args.executor,
                           workers=args.workers, address=args.address, settings=settings,
                           check_equivalence=args.check_equivalence, retry_failed=args.retry_failed,
                           on_point=on_point)
    _summary(Console(highlight=False) if sys.stdout.isatty() else Console(width=120, highlight=False), result)
    return 0


def _progress(console: Console, total: int):
    """A progress bar on an interactive stderr, else one line per finished point."""
    import contextlib

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    @contextlib.contextmanager
    def bar():
        if not console.is_terminal:
            def line(done, n, point, result, cached):
                state = "cached" if cached else f"{result.status} in {result.seconds:.1f} s"
                console.print(f"[{done}/{n}] {escape(point.label)}: {state}", markup=False)
            yield line
            return
        with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[failed]}"),
                      TimeRemainingColumn(), console=console, transient=True) as progress:
            task = progress.add_task("sweep", total=total, failed="")
            failed = 0

            def advance(done, n, point, result, cached):
                nonlocal failed
                failed += result.status != "ok"
                progress.update(task, completed=done, failed=f"{failed} failed" if failed else "")
            yield advance
    return bar()


def _summary(console: Console, result) -> None:
    from compiler.sweep.table import status_counts

    rows = result.rows
    console.print(f"{len(rows)} points: {status_counts(rows)} ({result.computed} computed, {len(rows) - result.computed} "
                  f"from earlier runs) in {result.seconds['total']:.1f} s", markup=False)
    for row in result.failed:
        first = (row["error"].splitlines() or [""])[0]
        console.print(f"  {row['status']}: point {row['point']} ({row['label']}): {first}", markup=False)
    for name, path in result.paths.items():
        console.print(f"{name}: {path}", markup=False)


def _write(path: Path, text: str) -> None:
    from compiler.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text)

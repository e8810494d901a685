"""Lowering a graph to an HLS project: integer form, ranges, stages, folding, C++, C simulation.

    graph --precision.py--> integer form --ranges.py--> proven ranges (+ calibration check)
          --build.py--> stages --folding.py--> PE/SIMD --emit/--> project folder
          --csim.py--> g++ executable (cached) --> artifact.run(x)

The estimate (stages, folding, report) takes well under a second; it is done before any C++ is
written, and the C simulation then runs one frame to check every stage's cycle formula against
the loop iterations the C++ counts.
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from backends.hls import csim
from backends.hls.build import Design, build_design
from backends.hls.emit import project_files
from backends.hls.emit.sources import partition_warnings
from backends.hls.folding import Folding, solve
from backends.hls.parts import Part
from backends.hls.precision import integer_form
from backends.hls.ranges import check_calibration, static_ranges
from backends.hls.report import markdown_table, plot, rich_table, summarize
from compiler import calibration
from compiler.atomic import atomic_path, current_path
from compiler.context import PassContext
from compiler.errors import BackendError
from compiler.ir import Graph

CALIBRATION_BATCHES = 8


@dataclass
class HLSDesign:
    """What `target hls` produced: the design, its estimate, the project folder, the integer graph."""

    design: Design
    folding: Folding
    summary: dict
    project: Path
    graph: Graph                       # the integer graph the C++ reproduces bit for bit
    build: csim.BuildStats | None = None
    warnings: list[str] = field(default_factory=list)

    def table(self):
        return rich_table(self.summary, f"hls: {self.design.name}")

    def render(self, console=None) -> None:
        """Print the stage table and the warnings (the CLI calls this after compiling)."""
        from rich.console import Console
        console = console or Console()
        if not console.is_terminal:
            console.width = max(console.width, 200)
        console.print(self.table())
        for w in self.warnings:
            console.print(f"[yellow]warning:[/] {w}", highlight=False)


def _calibration_batches(graph: Graph, ctx: PassContext) -> list:
    if ctx.calibration is None:
        return []
    return calibration.batches(graph, ctx.calibration.data, CALIBRATION_BATCHES)


def lower_design(graph: Graph, output: Path | None, ctx: PassContext, *, part: Part, clock_mhz: float,
                 fps: float | None, io: str, precision: str, simulate: bool, host_reorder: bool = False):
    from compiler.backend import Artifact

    integer_graph, pipeline, source = integer_form(graph, precision, ctx)
    start = time.perf_counter()
    ranges = static_ranges(integer_graph)
    reached = check_calibration(integer_graph, ranges, _calibration_batches(integer_graph, ctx))
    try:
        design = build_design(integer_graph, ranges, host_reorder)
    except BackendError as exc:
        if not pipeline or "have no HLS stage" not in exc.what:
            raise
        raise BackendError(exc.what, where=exc.where, hint=f"the backend lowered the float graph with {pipeline}; "
                           "integerize has no integer rule for these ops, so they stayed float: replace them in the "
                           "model by ops that have one (docs/integer-form.md lists them)") from None
    folding = solve(design, part, clock_mhz, fps or None)
    summary = summarize(design, folding, part, clock_mhz, io)
    summary["estimate_seconds"] = round(time.perf_counter() - start, 4)
    warnings = partition_warnings(design, io)
    if pipeline:
        summary["lowering"] = {"pipeline": pipeline, "calibration": source}
        if source == "generated inputs":
            warnings.append("the float graph was calibrated on generated inputs: pass calibration data "
                            "(--calibration-data FILE.npy, or compile(..., calibration_data=...)) for ranges "
                            "that match real data")
    if reached:
        summary["calibration_ranges"] = reached
    files = project_files(design, part, clock_mhz, io, summary, markdown_table(summary))
    project = _write(files, output, summary)
    result = HLSDesign(design, folding, summary, project, integer_graph, warnings=warnings)
    runner = None
    if simulate:
        exe, stats = csim.build(current_path(project), files)  # the staged copy until the compile commits
        result.build = stats
        summary["csim_build"] = {"seconds": round(stats.seconds, 3), "compiled": stats.compiled,
                                 "cached": stats.cached, "peak_rss_mb": round(stats.peak_rss_mb, 1)}
        warnings += [f"g++: {line}" for line in stats.warnings[:10]]
        runner = csim.CSim(exe, [b.sample_shape for b in design.inputs],
                           [tuple(b.value.shape[1:]) for b in design.outputs],
                           [b.value.dtype for b in design.outputs], len(design.stages))
        warnings += _check_cycles(design, runner, summary)
    summary["warnings"] = warnings
    if output is not None:
        (current_path(project) / "report.json").write_text(json.dumps(summary, indent=2, default=str))
    files_out = [project / name for name in sorted(files)] + \
        ([project / "report.json", project / "stages.png"] if output is not None else [])
    return Artifact(target="hls", obj=result, files=files_out if output is not None else [], runner=runner,
                    info=summary)


def _check_cycles(design: Design, runner: csim.CSim, summary: dict) -> list[str]:
    """One frame through the C simulation: each stage's counted loop iterations against its formula."""
    runner([torch.zeros(1, *b.sample_shape) for b in design.inputs])
    out = []
    for row, stage, measured in zip(summary["stages"], design.stages, runner.cycles_per_frame()):
        row["csim_cycles"] = measured
        if measured != stage.cycles():
            out.append(f"stage '{stage.name}': the C simulation counted {measured:,.0f} cycles per frame, "
                       f"the estimate says {stage.cycles():,}")
    return out


def _write(files: dict[str, str], output: Path | None, summary: dict) -> Path:
    if output is None:
        root = csim.cache_root() / "projects"
        root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="design-", dir=root))
        _write_files(folder, files)
        return folder
    output = Path(output)
    with atomic_path(output, directory=True) as tmp:
        _write_files(tmp, files)
        plot(summary, tmp / "stages.png")
    return output


def _write_files(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

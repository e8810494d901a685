"""Writing a design as a C++ project folder (sources, testbench, scripts), as text in memory first."""
from __future__ import annotations

from importlib import resources as importlib_resources

from backends.hls.build import Design
from backends.hls.emit.project import build_tcl, makefile, readme
from backends.hls.emit.sources import design_header, stage_source, top_source
from backends.hls.emit.testbench import testbench
from backends.hls.parts import Part

STATIC_HEADERS = ("nnf_types.h",)


def static_header(name: str) -> str:
    return importlib_resources.files("backends.hls").joinpath("cpp", name).read_text()


def project_files(design: Design, part: Part, clock_mhz: float, io: str, summary: dict, table: str) -> dict[str, str]:
    """Relative path -> text of every file of the project."""
    files = {f"include/{h}": static_header(h) for h in STATIC_HEADERS}
    declarations = []
    for stage in design.stages:
        files[f"src/stages/{stage.name}.cpp"] = stage_source(stage)
        unit = stage.data_unit()
        if unit is not None:
            declarations += unit[0]
            files[f"src/data/{stage.name}.cpp"] = unit[1]
    files["src/design.h"] = design_header(design, io, declarations)
    files["src/top.cpp"] = top_source(design, io)
    files["tb/testbench.cpp"] = testbench(design, io)
    files["build.tcl"] = build_tcl(design, part, clock_mhz)
    files["Makefile"] = makefile()
    files["README.md"] = readme(design, part, clock_mhz, io, summary, table)
    return files

"""C simulation: build the project with g++ once (cached by content), run whole batches in one call.

Every translation unit compiles to an object cached under the hash of its text, the headers and
the compiler command, in parallel; the executable is cached under the hash of its objects. A
design that changes one layer's weights recompiles that layer's data file only; the same design
built again (another test, another run) compiles nothing. The cache lives in $NNFORGE_HLS_CACHE,
else ~/.cache/nnforge/hls.

The build is a shared library; `CSim` calls its `nnf_csim` once for a whole batch (float32 in,
float64 out: exact for float32 and for integers) and reads the per-stage loop counts. The
project's Makefile builds the same testbench as a program that reads and writes files.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from backends.hls.emit.project import CXXFLAGS
from compiler.errors import BackendError, UserInputError

ERROR_LINES = 12
LARGE_UNIT = 64 * 1024     # characters of a weight file that compiles on its own


def cache_root() -> Path:
    root = os.environ.get("NNFORGE_HLS_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "nnforge" / "hls"


def _compiler() -> str:
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        raise BackendError(f"the C simulation needs a C++ compiler, and '{cxx}' is not on PATH",
                           hint="install g++ (apt-get install g++), or set CXX to a C++17 compiler")
    return cxx


def host_cpu() -> str:
    """What -march=native compiles for: objects built for another CPU are not reused."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    flags = next((line for line in info.splitlines() if line.startswith(("flags", "Features"))), "")
    model = next((line for line in info.splitlines() if line.startswith("model name")), "")
    return model + flags


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:24]


@dataclass
class BuildStats:
    seconds: float = 0.0
    compiled: int = 0              # translation units compiled (not found in the cache)
    cached: int = 0
    peak_rss_mb: float = 0.0       # the largest g++ process this build ran
    per_unit: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)    # g++'s warning lines (the generated code has none)


def build(project: Path, files: dict[str, str], jobs: int | None = None) -> tuple[Path, BuildStats]:
    """Compile the project (cached) and link the testbench; returns the executable.

    The stages, the top function, the testbench and the small tables compile as one translation
    unit (their text concatenated: the headers are parsed once); each large weight file compiles on
    its own, in parallel, so time and memory grow linearly with the weights.
    """
    cxx = _compiler()
    start = time.perf_counter()
    headers = "".join(files[k] for k in sorted(files) if k.endswith(".h"))
    flags = CXXFLAGS
    command = [cxx, *flags, f"-I{project / 'include'}", f"-I{project / 'src'}"]
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout + host_cpu()
    objects_dir = cache_root() / "objects"
    objects_dir.mkdir(parents=True, exist_ok=True)
    units = sorted(k for k in files if k.endswith(".cpp"))
    large = [u for u in units if u.startswith("src/data/") and len(files[u]) > LARGE_UNIT]
    sources = {u: files[u] for u in large}
    sources["unity.cpp"] = "".join(f"// ---- {u} ----\n{files[u]}\n" for u in units if u not in large)
    stats = BuildStats()
    todo, objects = [], []
    for unit, text in sources.items():
        obj = objects_dir / f"{_digest(version, ' '.join(flags), headers, text)}.o"
        objects.append(obj)
        if obj.exists():
            stats.cached += 1
        else:
            todo.append((unit, text, obj))

    def compile_one(item: tuple[str, str, Path]) -> tuple[str, str, float, float]:
        unit, text, obj = item
        t = time.perf_counter()
        tmp = obj.with_suffix(f".{os.getpid()}.{abs(hash(unit))}.tmp")
        source = tmp.with_suffix(".cpp")
        source.write_text(text)
        try:
            code, err, rss = run_measured(command + ["-c", str(source), "-o", str(tmp)])
        finally:
            source.unlink(missing_ok=True)
        if code == 0:
            os.replace(tmp, obj)
            stats.warnings += [line for line in err.splitlines() if "warning:" in line]
        return unit, err if code else "", time.perf_counter() - t, rss

    with ThreadPoolExecutor(max_workers=jobs or max(1, os.cpu_count() or 1)) as pool:
        results = list(pool.map(compile_one, todo))
    failed = [(unit, err) for unit, err, _, _ in results if err]
    if failed:
        _fail(project, failed)
    stats.compiled = len(todo)
    stats.per_unit = {unit: secs for unit, _, secs, _ in results}
    stats.peak_rss_mb = max((rss for *_, rss in results), default=0.0)
    exe = cache_root() / "lib" / _digest(*(o.name for o in objects)) / "libcsim.so"
    if not exe.exists():
        exe.parent.mkdir(parents=True, exist_ok=True)
        tmp = exe.with_suffix(f".{os.getpid()}.tmp")
        code, err, rss = run_measured([cxx, "-shared", "-o", str(tmp), *map(str, objects)])
        if code:
            _fail(project, [("link", err)])
        os.replace(tmp, exe)
        stats.peak_rss_mb = max(stats.peak_rss_mb, rss)
    stats.seconds = time.perf_counter() - start
    return exe, stats


def run_measured(command: list[str]) -> tuple[int, str, float]:
    """(exit code, stderr, peak resident MB) of one process (its own rusage, via wait4)."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        return proc.returncode, err.read().decode(errors="replace"), usage.ru_maxrss / 1024


def _fail(project: Path, failed: list[tuple[str, str]]) -> None:
    unit, err = failed[0]
    lines = err.strip().splitlines()
    first = [line for line in lines if "error" in line][:ERROR_LINES] or lines[:ERROR_LINES]
    raise BackendError(f"g++ failed on {unit} ({len(failed)} file(s) failed):\n  " + "\n  ".join(first),
                       where=str(project), hint="the project folder above holds the sources; `make` there reproduces it")


class CSim:
    """Runs the built testbench in this process (ctypes; the GIL is released while it runs):
    `sim([x0, x1, ...])` with any number of frames, the same for every input."""

    engine = "g++ C simulation"

    def __init__(self, library: Path, sample_shapes: list[tuple[int, ...]], out_shapes: list[tuple[int, ...]],
                 out_dtypes: list[torch.dtype], stages: int):
        self.library, self.sample_shapes, self.out_shapes = library, sample_shapes, out_shapes
        self.out_dtypes, self.stages = out_dtypes, stages
        self._run = ctypes.CDLL(str(library)).nnf_csim
        self._run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
        self._run.restype = ctypes.c_int
        self.last_cycles: list[int] = []
        self.last_frames = 0

    def __call__(self, inputs) -> list[torch.Tensor]:
        if len(inputs) != len(self.sample_shapes):
            raise UserInputError(f"the design takes {len(self.sample_shapes)} input(s), got {len(inputs)}")
        frames = inputs[0].shape[0] if inputs else 0
        for x, shape in zip(inputs, self.sample_shapes):
            if tuple(x.shape[1:]) != shape or x.shape[0] != frames:
                raise UserInputError(f"input of shape {list(x.shape)} does not match the design's "
                                     f"[N, {', '.join(map(str, shape))}] (the same N for every input)")
        flat = np.concatenate([x.detach().to(torch.float32).contiguous().numpy().reshape(-1) for x in inputs])
        sizes = [frames * int(np.prod(shape)) for shape in self.out_shapes]
        out = np.empty(sum(sizes), dtype=np.float64)
        cycles = np.zeros(self.stages, dtype=np.uint64)
        failed = self._run(flat.ctypes.data, out.ctypes.data, cycles.ctypes.data, frames)
        if failed:
            raise BackendError("the C simulation stopped: a stage read an empty stream (a bug in the generated "
                               "design, please report it with the project folder)", where=str(self.library))
        self.last_cycles, self.last_frames = [int(c) for c in cycles], frames
        outs, offset = [], 0
        for shape, dtype, n in zip(self.out_shapes, self.out_dtypes, sizes):
            outs.append(torch.from_numpy(out[offset:offset + n].copy()).reshape(frames, *shape).to(dtype))
            offset += n
        return outs

    def cycles_per_frame(self) -> list[float]:
        return [c / self.last_frames for c in self.last_cycles] if self.last_frames else []

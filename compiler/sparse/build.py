"""Compile the sparse kernel on first use and cache the shared library per user.

The library is built with the host's C++ compiler (`$CXX`, else g++ or c++) for the host's own
vector unit (`-march=native`), warnings on, and stored in `<cache>/sparse-kernel/<key>.so`, where
the key hashes the source, the flags, the compiler's version and the host CPU: a changed kernel,
compiler or machine builds anew, anything else loads in milliseconds. The cache is
`$NNFORGE_CACHE_DIR`, else `$XDG_CACHE_HOME/nnforge`, else `~/.cache/nnforge`.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

from compiler.errors import NNForgeError

SOURCE = Path(__file__).with_name("kernel.cpp")
FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-Wall", "-Wextra")
HINT = ("install a C++ compiler (apt-get install g++) or point $CXX at one; the masked dense layers "
        "need none: lower with `target pytorch` (sparse-kernel=false) or to ONNX")


class SparseKernelError(NNForgeError):
    """The sparse kernel cannot be built or loaded on this machine."""


def cache_dir() -> Path:
    """Where nnforge keeps per-user build and measurement caches."""
    if os.environ.get("NNFORGE_CACHE_DIR"):
        return Path(os.environ["NNFORGE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nnforge"


def find_compiler() -> str:
    wanted = os.environ.get("CXX")
    found = shutil.which(wanted) if wanted else shutil.which("g++") or shutil.which("c++")
    if not found:
        looked = f"$CXX={wanted!r}" if wanted else "g++ and c++ on $PATH"
        raise SparseKernelError(f"no C++ compiler for the sparse kernel (looked for {looked})", hint=HINT)
    return found


@lru_cache(maxsize=1)
def host_cpu() -> str:
    """The CPU model and feature flags: -march=native code must not run on another CPU."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine() + platform.processor()
    wanted = [ln for ln in lines if ln.startswith(("model name", "flags", "Features"))]
    return platform.machine() + "\n" + "\n".join(dict.fromkeys(wanted))


def library_path(compiler: str) -> Path:
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SparseKernelError(f"cannot run the C++ compiler {compiler}: {exc}", hint=HINT) from None
    key = hashlib.sha256("\0".join([SOURCE.read_text(), *FLAGS, compiler, version, host_cpu()]).encode())
    return cache_dir() / "sparse-kernel" / f"kernel-{key.hexdigest()[:20]}.so"


def build(compiler: str, target: Path) -> str:
    """Compile into `target` (atomically: a concurrent build never sees half a file); returns the
    compiler's diagnostics (empty when the source compiles without warnings)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        done = subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", tmp], capture_output=True, text=True,
                              timeout=600)
        if done.returncode != 0:
            raise SparseKernelError(f"the sparse kernel failed to compile with {compiler}",
                                    hint=done.stderr.strip()[-2000:] or HINT)
        os.replace(tmp, target)
        return done.stderr
    except (OSError, subprocess.SubprocessError) as exc:
        raise SparseKernelError(f"cannot run the C++ compiler {compiler}: {exc}", hint=HINT) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@lru_cache(maxsize=1)
def load_kernel() -> ctypes.CDLL:
    """The compiled kernel with its argument types set (built the first time)."""
    compiler = find_compiler()
    path = library_path(compiler)
    if not path.exists():
        build(compiler, path)
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        raise SparseKernelError(f"cannot load the sparse kernel {path}: {exc}",
                                hint=f"delete {path.parent} to rebuild it") from None
    ptr, i64 = ctypes.c_void_p, ctypes.c_int64
    lib.nnf_sparse_conv2d.argtypes = [ptr, ptr, ptr, ctypes.c_int, ptr, ptr, ptr, ptr]
    lib.nnf_sparse_matmul.argtypes = [ptr, ptr, i64, i64, i64, ctypes.c_int, ptr, ptr, ptr, ptr]
    lib.nnf_sparse_conv2d.restype = lib.nnf_sparse_matmul.restype = ctypes.c_int
    lib.nnf_vector_floats.restype = ctypes.c_int
    return lib

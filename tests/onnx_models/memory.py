"""Peak memory of one ONNX import, measured in a fresh process.

    python -m tests.onnx_models.memory model.onnx [AxBxC ...]   # prints one JSON line

After a warm-up import of two tiny models (lazy imports and first-call costs belong to the
process, not the model), the peak resident set size over the import (VmHWM, reset through
/proc/self/clear_refs right before it, with a sampling thread as a fallback) minus the resident
size before it, next to the bytes of the weights the imported graph holds. `wide_mlp()` writes a ResNet-50-sized model.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np


def wide_mlp(path: Path, layers: int = 24, width: int = 1024) -> int:
    """A Gemm/Relu chain with ResNet-50's weight volume (24 x 1024 x 1025 floats, ~101 MB); returns its
    weight bytes."""
    import onnx
    from onnx import TensorProto, helper

    from tests.onnx_models import make_model, value_info

    rng = np.random.default_rng(0)
    nodes, inits, prev = [], {}, "x"
    for i in range(layers):
        inits[f"fc{i}.weight"] = rng.standard_normal((width, width), dtype=np.float32)
        inits[f"fc{i}.bias"] = rng.standard_normal(width, dtype=np.float32)
        nodes += [helper.make_node("Gemm", [prev, f"fc{i}.weight", f"fc{i}.bias"], [f"fc{i}"], transB=1, name=f"fc{i}"),
                  helper.make_node("Relu", [f"fc{i}"], [f"relu{i}"], name=f"relu{i}")]
        prev = f"relu{i}"
    model = make_model(nodes, [value_info("x", TensorProto.FLOAT, ["batch", width])],
                       [value_info(prev, TensorProto.FLOAT, ["batch", width])], inits, 17, "wide_mlp")
    onnx.save(model, path)
    return sum(a.nbytes for a in inits.values())


def measure(path: Path, shapes: list[tuple[int, ...]] | None = None) -> dict:
    """Run the measurement in a fresh interpreter (nothing else in its heap)."""
    args = [sys.executable, "-m", "tests.onnx_models.memory", str(path)] + ["x".join(map(str, s)) for s in shapes or []]
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=root, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(root)})
    if proc.returncode:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _hwm() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))


def _main(argv: list[str]) -> None:
    import torch  # noqa: F401  (loaded before the baseline)

    from tests.onnx_models import warm_up

    import_onnx = warm_up()   # lazy imports and first-call costs belong to the process, not the model
    shapes = [tuple(int(d) for d in s.split("x")) for s in argv[1:]] or None
    base = _rss()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        hwm_ok = _hwm() <= base + (8 << 20)
    except OSError:
        hwm_ok = False
    peak, done = [base], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    graph = import_onnx(argv[0], input_shapes=shapes)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    peak_delta = max(peak[0], _hwm() if hwm_ok else 0) - base
    weights = sum(v.data.numel() * v.data.element_size() for v in graph.weights.values())
    print(json.dumps({"weight_bytes": weights, "peak_delta_bytes": peak_delta, "after_bytes": _rss() - base,
                      "seconds": round(seconds, 3), "ratio": round(peak_delta / max(weights, 1), 3),
                      "method": "VmHWM" if hwm_ok else "sampled RSS"}))


if __name__ == "__main__":
    _main(sys.argv[1:])

"""ONNX import and export speed and memory: the real third-party models and the zoo's torch.onnx
exports, next to onnxslim and onnxsim on the same files when they are installed
(`pip install onnxslim onnxsim`; otherwise their columns read "not installed").

For each model: nnforge's import (file -> verified IR, best of --repeat) and export (IR -> ONNX
bytes, best of --repeat); the peers' load -> simplify -> serialize on the same file with the same
input shapes; node counts before and after; the round trip's largest difference from
onnxruntime on the original; and the peak memory growth of a fresh process importing the file,
as a multiple of the weight bytes (requirement: at most about 2x).

    python bench/onnx_import.py [--repeat 3] [--models ocr-det,resnet50,...] [--no-memory]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.onnx import OnnxBackend  # noqa: E402
from frontends.onnx import import_onnx  # noqa: E402
from tests.onnx_models import ort_run, warm_up  # noqa: E402
from tests.onnx_models.memory import measure  # noqa: E402
from tests.onnx_models.real import ROUND_TRIPS, Unavailable, fetch  # noqa: E402
from tests.zoo import NAMES, build  # noqa: E402


def zoo_export(name: str, folder: Path) -> tuple[Path, dict[str, np.ndarray]]:
    kwargs = {"input_size": 224} if name == "resnet50-224" else {}
    zoo = build(name.removesuffix("-224"), **kwargs)
    names = [f"input_{i}" for i in range(len(zoo.example_inputs))]
    path = folder / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(zoo.module, zoo.example_inputs, str(path), dynamo=False, opset_version=17,
                          input_names=names)
    return path, {n: t.numpy() for n, t in zip(names, zoo.example_inputs)}


def best(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def peer(name: str, path: Path, feeds: dict[str, np.ndarray], repeat: int) -> tuple[str, str]:
    """(seconds, nodes) of the peer's load -> simplify -> serialize, or why it did not run."""
    shapes = {k: list(v.shape) for k, v in feeds.items()}
    try:
        if name == "onnxslim":
            import onnxslim

            def run():
                return onnxslim.slim(onnx.load(path), input_shapes=[f"{k}:{','.join(map(str, s))}"
                                                                    for k, s in shapes.items()])
        else:
            import onnxsim

            def run():
                return onnxsim.simplify(onnx.load(path), overwrite_input_shapes=shapes)[0]
    except ImportError:
        return "not installed", ""
    try:
        seconds, model = best(lambda: _serialized(run()), repeat)
        return f"{seconds:.3f}", str(len(model.graph.node))
    except Exception as exc:  # noqa: BLE001 - a peer failing on a model is a result, not a crash
        return f"failed: {type(exc).__name__}", ""


def _serialized(model: onnx.ModelProto) -> onnx.ModelProto:
    model.SerializeToString()
    return model


def bench_one(name: str, path: Path, feeds: dict[str, np.ndarray], args) -> dict:
    shapes = [v.shape for v in feeds.values()]
    import_s, graph = best(lambda: import_onnx(path, input_shapes=shapes), args.repeat)
    export_s, artifact = best(lambda: OnnxBackend(check=False).lower(graph, None), args.repeat)
    expected = ort_run(path, feeds)
    got = artifact.run(*[torch.from_numpy(a) for a in feeds.values()])
    diff = max(float(np.abs(g.numpy().astype(np.float64) - e).max()) for g, e in zip(got, expected))
    row = {"model": name, "MB": path.stat().st_size / 1e6, "onnx nodes": len(onnx.load(path).graph.node),
           "ir nodes": len(graph.nodes), "import s": import_s, "export s": export_s, "max diff": diff}
    for peer_name in ("onnxslim", "onnxsim"):
        row[peer_name + " s"], row[peer_name + " nodes"] = peer(peer_name, path, feeds, args.repeat)
    if not args.no_memory:
        mem = measure(path, shapes)
        row["peak MB"], row["peak/weights"] = mem["peak_delta_bytes"] / 1e6, mem["ratio"]
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", default="", help="comma-separated subset (real model keys or zoo names)")
    parser.add_argument("--no-memory", action="store_true", help="skip the fresh-process memory measurement")
    args = parser.parse_args()
    wanted = set(filter(None, args.models.split(",")))
    warm_up()  # lazy imports and first calls are the process's, not a model's
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in ROUND_TRIPS:
            if wanted and model.key not in wanted:
                continue
            try:
                path = fetch(model)
            except Unavailable as exc:
                print(f"{model.key}: skipped ({exc})")
                continue
            rows.append(bench_one(model.key, path, model.make_inputs(), args))
        for name in (*NAMES, "resnet50-224"):
            if wanted and name not in wanted:
                continue
            path, feeds = zoo_export(name, Path(tmp))
            rows.append(bench_one(name, path, feeds, args))
    _print(rows)
    return 0


def _print(rows: list[dict]) -> None:
    if not rows:
        print("no models")
        return
    columns = list(rows[0])
    cells = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print(f"torch {torch.__version__}, onnx {onnx.__version__}, {torch.get_num_threads()} threads; best of the "
          "repeats; peer columns: load + simplify + serialize")
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))
    big = [r for r in rows if isinstance(r.get("peak/weights"), float) and r["MB"] >= 10]
    if big:
        worst = max(big, key=lambda r: r["peak/weights"])
        print(f"peak import memory of the models over 10 MB: at most {worst['peak/weights']:.2f}x the weight bytes "
              f"({worst['model']}; requirement: about 2x; small models are dominated by fixed per-import costs)")
    for peer_name in ("onnxslim", "onnxsim"):
        timed = [(r["import s"] + r["export s"], float(r[f"{peer_name} s"])) for r in rows
                 if _is_number(r.get(f"{peer_name} s"))]
        if timed:
            ratio = sum(b for _, b in timed) / sum(a for a, _ in timed)
            print(f"{peer_name} load+simplify+serialize / nnforge import+export, summed over the {len(timed)} models "
                  f"both ran: {ratio:.2f}x")


def _is_number(text) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if value < 1e-2 else f"{value:.3f}" if value < 100 else f"{value:.0f}"
    return str(value)


if __name__ == "__main__":
    sys.exit(main())

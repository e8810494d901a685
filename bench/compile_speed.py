"""Compile speed: trace, pipeline and ONNX export for ResNet-50 and long MLP chains.

Prints seconds per stage, the overhead per IR node, the cost ratio of the 2000-layer chain to the
200-layer chain (linear scaling means about 10x), and, measured in the same run, the ratio to
PyTorch's own ONNX exporter (torch.onnx.export, TorchScript-based) on the same model.

    python bench/compile_speed.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import io
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.onnx import OnnxBackend  # noqa: E402
from compiler.frontend import import_model  # noqa: E402
from compiler.manager import PassManager  # noqa: E402
from compiler.pipeline import parse_pipeline  # noqa: E402
from tests.zoo import build  # noqa: E402

PIPELINE = "fold-bn,dce,fold-constants"
TARGETS = {"resnet50": 1.5, "mlp-2000": 3.0}  # seconds for trace + pipeline + ONNX export


def mlp_chain(layers: int, width: int = 64):
    torch.manual_seed(0)
    blocks = []
    for _ in range(layers):
        blocks += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*blocks).eval(), (torch.randn(8, width),)


def resnet50():
    model = build("resnet50", input_size=224)
    return model.module, model.example_inputs


def measure(module: nn.Module, inputs) -> dict[str, float]:
    start = time.perf_counter()
    graph = import_model(module, inputs, capture="fx")  # the torch.fx path; bench/capture.py times export
    traced = time.perf_counter()
    PassManager(parse_pipeline(PIPELINE).passes).run(graph)
    piped = time.perf_counter()
    OnnxBackend(check=False).lower(graph, None)
    exported = time.perf_counter()
    return {"trace": traced - start, "pipeline": piped - traced, "export": exported - piped,
            "total": exported - start, "nodes": len(graph)}


def torch_onnx_export(module: nn.Module, inputs) -> float:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, tuple(inputs), io.BytesIO(), dynamo=False)
    return time.perf_counter() - start


def best_of(repeat: int, fn, *args):
    runs = [fn(*args) for _ in range(repeat)]
    if isinstance(runs[0], dict):
        return min(runs, key=lambda r: r["total"])
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    cases = {"resnet50": resnet50(), "mlp-200": mlp_chain(200), "mlp-2000": mlp_chain(2000)}
    print(f"pipeline: {PIPELINE}; best of {args.repeat}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    header = f"{'model':<10} {'nodes':>6} {'trace s':>8} {'pipeline s':>10} {'export s':>9} " \
             f"{'total s':>8} {'us/node':>8} {'torch.onnx s':>12} {'speedup':>8}"
    print(header)
    results = {}
    for name, (module, inputs) in cases.items():
        r = best_of(args.repeat, measure, module, inputs)
        peer = best_of(args.repeat, torch_onnx_export, module, inputs)
        results[name] = r
        print(f"{name:<10} {r['nodes']:>6} {r['trace']:>8.3f} {r['pipeline']:>10.3f} {r['export']:>9.3f} "
              f"{r['total']:>8.3f} {1e6 * r['total'] / r['nodes']:>8.1f} {peer:>12.3f} "
              f"{peer / r['total']:>7.2f}x")
    ratio = results["mlp-2000"]["total"] / results["mlp-200"]["total"]
    print(f"scaling: mlp-2000 / mlp-200 total = {ratio:.2f}x (linear would be 10x; limit 12x) "
          f"{'OK' if ratio <= 12 else 'OVER'}")
    for name, limit in TARGETS.items():
        total = results[name]["total"]
        print(f"target: {name} {total:.3f} s <= {limit} s {'OK' if total <= limit else 'OVER'}")


if __name__ == "__main__":
    main()

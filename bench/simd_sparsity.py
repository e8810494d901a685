"""SIMD-group sparse kernel against torch's dense convolution, and the latency model's error.

    python bench/simd_sparsity.py              # ResNet-50 and MobileNetV2 layers at 224x224, ResNet-18 model
    python bench/simd_sparsity.py --quick      # fewer timing rounds
    python bench/simd_sparsity.py --json out.json

Everything runs on one thread, in one process, timings interleaved (every round times each
variant once) and the fastest round kept, so ratios are measured under the same conditions. Time
is the thread's CPU time (the latency model's `clock`): wall time on an idle core, without the
time slices other processes take on a shared machine.

1. Kernel table: every distinct 3x3 and 1x1 convolution of ResNet-50 and every pointwise (1x1)
   convolution of MobileNetV2, batch 1 at 224x224, BatchNorm folded. Torch's dense conv2d against
   the sparse kernel with random SIMD groups kept at densities 1.0, 0.5 and 0.25 (`simd` = the
   host's fp32 lanes). Targets: at 0.25 at least 2x faster than dense on the ResNet-50 layers
   (geometric mean), at 0.5 no slower.
2. Latency model: ResNet-18 at 224x224 after `simd-sparsify` (uniform 50% and 75%, and a budget of
   half the dense latency); the model's whole-network prediction against the GraphModule of
   `target pytorch{sparse-kernel=true}` measured end to end. Target: within 10%.
3. Allocation: at the same predicted latency, the importance the budget solver removes against one
   uniform density for every layer (the stats of the pass).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler.api import compile  # noqa: E402
from compiler.backend import get_backend  # noqa: E402
from compiler.context import host_simd_width  # noqa: E402
from compiler.ops import get_op  # noqa: E402
from compiler.sparse.annotation import SparsityAnnotation  # noqa: E402
from compiler.sparse.layers import kernel_layer  # noqa: E402
from passes.simd_sparsity.latency import (LatencyModel, clock, layer_key, model_latency,  # noqa: E402
                                          random_sparse_weight)
from passes.simd_sparsity.report import kernel_layers  # noqa: E402
from tests.zoo import build  # noqa: E402

DENSITIES = (1.0, 0.5, 0.25)


def resnet50_224():
    """ResNet-50 at 224x224, batch 1, for `nnforge sparsity-latency bench/simd_sparsity.py:resnet50_224`."""
    zoo = build("resnet50", input_size=224, batch=1)
    return zoo.module, zoo.example_inputs


def interleaved_ms(calls: list, rounds: int) -> list[float]:
    """Fastest time of each call over `rounds` rounds; every round runs every call (after a warm-up)."""
    for call in calls:
        call()
    best = [math.inf] * len(calls)
    for _ in range(rounds):
        for i, call in enumerate(calls):
            start = clock()
            call()
            best[i] = min(best[i], clock() - start)
    return [b * 1e3 for b in best]


def distinct_layers(name: str, keep) -> list:
    zoo = build(name, input_size=224, batch=1)
    graph = compile(zoo.module, zoo.example_inputs, "fold-bn").graph
    seen, layers = set(), []
    for layer in kernel_layers(graph, host_simd_width()):
        key = layer_key(layer.node, 0)
        if layer.node.op == "conv" and keep(layer) and key not in seen:
            seen.add(key)
            layers.append(layer)
    return layers


def kernel_table(rounds: int, lanes: int) -> list[dict]:
    def kernel_size(layer):
        return layer.weight.shape[2]

    groups = [("resnet50", "3x3", distinct_layers("resnet50", lambda c: kernel_size(c) == 3)),
              ("resnet50", "1x1", distinct_layers("resnet50", lambda c: kernel_size(c) == 1)),
              ("mobilenetv2", "1x1", distinct_layers("mobilenetv2", lambda c: kernel_size(c) == 1
                                                     and c.layout.group_count(c.node) == 1))]
    rows, gen = [], torch.Generator().manual_seed(0)
    for model, kind, layers in groups:
        for layer in layers:
            node = layer.node
            x = torch.randn(node.inputs[0].shape, generator=gen)
            dense_args = [x, layer.weight.data, None]
            sparse = [kernel_layer(node, random_sparse_weight(layer, lanes, d, gen), None, lanes) for d in DENSITIES]
            opdef = get_op(node.op)
            times = interleaved_ms([lambda: opdef.run(dense_args, node.attrs)] + [lambda s=s: s(x) for s in sparse],
                                   rounds)
            o, c, *_ = layer.weight.shape
            rows.append({"model": model, "kind": kind, "layer": layer.name, "shape": f"{c}->{o}",
                         "input": "x".join(map(str, node.inputs[0].shape[2:])), "stride": node.attrs["stride"][0],
                         "dense_ms": times[0], **{f"sparse_ms@{d}": t for d, t in zip(DENSITIES, times[1:])}})
    return rows


def print_kernel_table(rows: list[dict], lanes: int) -> dict:
    print(f"\n## Sparse kernel vs torch dense conv2d (one thread, batch 1, simd={lanes}, "
          f"torch {torch.__version__}, ms = fastest round)\n")
    print("| model | conv | layer | in->out | input | stride | dense ms | sparse 1.0 | sparse 0.5 | sparse 0.25 "
          "| x @0.5 | x @0.25 |")
    print("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['kind']} | {r['layer']} | {r['shape']} | {r['input']} | {r['stride']} | "
              f"{r['dense_ms']:.3f} | {r['sparse_ms@1.0']:.3f} | {r['sparse_ms@0.5']:.3f} | "
              f"{r['sparse_ms@0.25']:.3f} | {r['dense_ms'] / r['sparse_ms@0.5']:.2f} | "
              f"{r['dense_ms'] / r['sparse_ms@0.25']:.2f} |")
    summary = {}
    print("\n| layers | n | x @1.0 | x @0.5 (geomean, min) | x @0.25 (geomean, min) |")
    print("|---|---:|---:|---:|---:|")
    for model, kind in dict.fromkeys((r["model"], r["kind"]) for r in rows):
        group = [r for r in rows if (r["model"], r["kind"]) == (model, kind)]
        ratio = {d: [r["dense_ms"] / r[f"sparse_ms@{d}"] for r in group] for d in DENSITIES}
        geo = {d: math.exp(sum(map(math.log, v)) / len(v)) for d, v in ratio.items()}
        summary[f"{model} {kind}"] = {"geomean": geo, "min": {d: min(v) for d, v in ratio.items()}}
        print(f"| {model} {kind} | {len(group)} | {geo[1.0]:.2f} | {geo[0.5]:.2f}, {min(ratio[0.5]):.2f} | "
              f"{geo[0.25]:.2f}, {min(ratio[0.25]):.2f} |")
    for key in ("resnet50 3x3", "resnet50 1x1"):
        geo = summary[key]["geomean"]
        print(f"target {key}: x{geo[0.25]:.2f} at 0.25 (>= 2: {'met' if geo[0.25] >= 2 else 'MISSED'}), "
              f"x{geo[0.5]:.2f} at 0.5 (>= 1: {'met' if geo[0.5] >= 1 else 'MISSED'})")
    return summary


def whole_model(pipelines: list[str], rounds: int) -> list[dict]:
    zoo = build("resnet18", input_size=224, batch=1)
    x = zoo.example_inputs
    dense = compile(zoo.module, x, "fold-bn", target="pytorch")
    model = LatencyModel()
    rows = []
    for pipeline in pipelines:
        result = compile(zoo.module, x, pipeline, target=get_backend("pytorch")(sparse_kernel=True))
        graph, stats = result.graph, result.report.passes[-1].stats
        tables, layers_ms = {}, 0.0
        for layer in kernel_layers(graph, host_simd_width()):
            note = layer.weight.annotation(SparsityAnnotation)
            tables[layer.node] = model.table(layer, host_simd_width())
            layers_ms += tables[layer.node].layer(note.density if note is not None else 1.0)
        model.save()
        predicted = model_latency(graph, tables, x).predict(layers_ms)
        measured, dense_ms = interleaved_ms([lambda: result.artifact.run(*x), lambda: dense.artifact.run(*x)],
                                            rounds)
        rows.append({"pipeline": pipeline, "density": stats["density"], "predicted_ms": predicted,
                     "measured_ms": measured, "dense_measured_ms": dense_ms,
                     "error": predicted / measured - 1, "stats": stats})
    print("\n## Latency model: ResNet-18 at 224x224, batch 1, one thread\n")
    print("| pipeline | density | predicted ms | measured ms | error | torch dense ms | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| `{r['pipeline']}` | {r['density']:.3f} | {r['predicted_ms']:.2f} | {r['measured_ms']:.2f} | "
              f"{100 * r['error']:+.1f}% | {r['dense_measured_ms']:.2f} | "
              f"{r['dense_measured_ms'] / r['measured_ms']:.2f} |")
    worst = max(abs(r["error"]) for r in rows)
    print(f"target: latency model within 10% of measured: worst {100 * worst:.1f}% "
          f"({'met' if worst <= 0.10 else 'MISSED'})")
    budgeted = [r for r in rows if "latency.budget_ms" in r["stats"]]
    if budgeted:
        print("\n## Allocation at the same predicted latency (share of the importance removed, lower is better)\n")
        print("| pipeline | budget ms | solver: predicted ms, removed | uniform: density, predicted ms, removed |")
        print("|---|---:|---:|---:|")
        for r in budgeted:
            s = r["stats"]
            print(f"| `{r['pipeline']}` | {s['latency.budget_ms']:.2f} | {s['latency.predicted_ms']:.2f}, "
                  f"{s['importance_removed']:.3f} | {s.get('uniform.density', float('nan')):.3f}, "
                  f"{s.get('uniform.predicted_ms', float('nan')):.2f}, "
                  f"{s.get('uniform.importance_removed', float('nan')):.3f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer timing rounds")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rounds = 8 if args.quick else 25
    lanes = host_simd_width()
    rows = kernel_table(rounds, lanes)
    summary = print_kernel_table(rows, lanes)
    models = whole_model(["fold-bn,simd-sparsify{sparsity=0.5}", "fold-bn,simd-sparsify{sparsity=0.75}",
                          "fold-bn,simd-sparsify{latency-budget=0.5}"], rounds)
    if args.json:
        args.json.write_text(json.dumps({"kernel": rows, "summary": summary, "models": models}, indent=1,
                                        default=str))


if __name__ == "__main__":
    main()

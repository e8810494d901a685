"""Accuracy of SIMD-group sparsity on real data against fine-grained and channel pruning.

    python bench/simd_sparsity_digits.py            # the table in docs/simd-sparsity.md
    python bench/simd_sparsity_digits.py --rounds 10

The digits CNN of tests/test_prune_digits.py (scikit-learn's 8x8 handwritten digits, 1300 train /
450 test images, batches of 50) is trained, BatchNorm folded, then:

* SIMD groups: `simd-sparsify` at 50% and 75% of the groups (simd = the host's lanes), run by the
  sparse kernel (`target pytorch{sparse-kernel=true}`);
* SIMD groups under a latency budget: `simd-sparsify{latency-budget="<ms>ms"}`, the per-layer
  densities chosen by the solver, at the loosest budget whose model is measured as fast as the
  uniform 50% / 75% model (predictions on layers this small are noisy);
* fine-grained: the smallest 50% / 75% of each layer's weights, elementwise (no kernel speeds that
  up on a CPU: it runs torch's dense layers);
* channels: the `prune` pass at the smallest ratio (steps of 0.05) whose (dense, smaller) model is
  measured as fast as the uniform SIMD model at 50% / 75%.

Each is evaluated as it comes out of the compiler and after a short fine-tune (6 epochs, pruned
weights held at zero). Latency is the batch-of-50 forward on one thread, the thread's CPU time,
fastest of `--rounds` interleaved rounds.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler.api import compile  # noqa: E402
from compiler.backend import get_backend  # noqa: E402
from compiler.ir import Graph  # noqa: E402
from passes.simd_sparsity.groups import find_layers  # noqa: E402
from passes.simd_sparsity.latency import clock, one_thread  # noqa: E402
from tests.test_prune_digits import BATCH, accuracy, cnn, digits, train  # noqa: E402

FINE_TUNE = [3e-3] * 3 + [1e-3] * 2 + [3e-4]
SPARSE_TORCH = get_backend("pytorch")(sparse_kernel=True)


def latency_ms(module, x: torch.Tensor, rounds: int) -> float:
    with torch.no_grad():
        module(x)
        best = float("inf")
        for _ in range(rounds):
            start = clock()
            module(x)
            best = min(best, clock() - start)
    return best * 1e3


def fine_tune(graph: Graph, data) -> None:
    """Fine-tune the graph's weights in place; pruned (zero) weights stay zero."""
    x_train, y_train = data[0], data[1]
    module = get_backend("pytorch")().lower(graph, None).obj  # parameters share the graph's tensors
    for p in module.parameters():
        p.requires_grad_(True)
        mask = p.detach() != 0
        if not mask.all():
            p.register_hook(lambda g, m=mask: g * m)  # Adam then never moves a pruned weight
    train(module, x_train, y_train, FINE_TUNE)


def fine_grained(graph: Graph, sparsity: float) -> Graph:
    """Zero the smallest `sparsity` of every prunable layer's weights (new tensors)."""
    layers, _ = find_layers(graph, pattern="simd", lanes=1, m=1)
    for layer in layers:
        w = layer.weight.data
        k = round(sparsity * w.numel())
        threshold = w.abs().flatten().kthvalue(k).values if k else -1.0
        layer.weight.data = torch.where(w.abs() > threshold, w, torch.zeros(()))
    return graph


def evaluate(name: str, make_graph, data, rounds: int, x: torch.Tensor, sparse: bool) -> dict:
    """Accuracy before and after fine-tuning, latency as the compiler's output runs it."""
    graph = make_graph()
    for weight in graph.weights.values():  # fine-tuning writes them: never the trained model's own tensors
        weight.data = weight.data.clone()
    target = SPARSE_TORCH if sparse else get_backend("pytorch")()
    row = {"method": name, "params": graph.param_count(),
           "accuracy": accuracy(target.lower(graph, None).obj, data[2], data[3])}
    fine_tune(graph, data)
    module = target.lower(graph, None).obj  # the fine-tuned weights, packed again
    row["tuned"] = accuracy(module, data[2], data[3])
    row["latency_ms"] = latency_ms(module, x, rounds)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="timing rounds per model")
    args = parser.parse_args()
    torch.manual_seed(0)
    data = digits()
    x = data[2][:BATCH]
    model = cnn()
    with one_thread():
        train(model.train(), data[0], data[1], [1e-2] * 8 + [1e-3] * 2)
        model.eval()

        def folded(pipeline: str = "") -> Graph:
            return compile(model, (x,), "fold-bn" + (f",{pipeline}" if pipeline else "")).graph

        def as_fast_as(target_ms: float, pipelines: list[str], sparse: bool) -> str:
            """The first pipeline (least pruning first) whose compiled model is measured at most 2%
            slower than `target_ms`: the same measured latency, whatever the predictions said."""
            backend = SPARSE_TORCH if sparse else get_backend("pytorch")()
            for pipeline in pipelines:
                module = backend.lower(compile(model, (x,), pipeline).graph, None).obj
                if latency_ms(module, x, args.rounds) <= 1.02 * target_ms:
                    return pipeline
            return pipelines[-1]

        rows = [evaluate("dense", folded, data, args.rounds, x, sparse=False)]
        for sparsity in (0.5, 0.75):
            simd = evaluate(f"SIMD groups, uniform {sparsity:.0%}",
                            lambda: folded(f"simd-sparsify{{sparsity={sparsity}}}"), data, args.rounds, x, True)
            rows.append(simd)
            target = simd["latency_ms"]
            budget = as_fast_as(target, [f'fold-bn,simd-sparsify{{latency-budget="{target * f:.3f}ms"}}'
                                         for f in (1.3, 1.2, 1.1, 1.0, 0.9, 0.8)], sparse=True)
            rows.append(evaluate(f"SIMD groups, {budget.split('{')[1][:-1]}",
                                 lambda: compile(model, (x,), budget).graph, data, args.rounds, x, True))
            rows.append(evaluate(f"fine-grained {sparsity:.0%}", lambda: fine_grained(folded(), sparsity), data,
                                 args.rounds, x, False))
            channels = as_fast_as(target, [f"prune{{ratio={r / 20}}},fold-bn" for r in range(1, 19)], sparse=False)
            rows.append(evaluate(f"channels, {channels.split(',')[0]}", lambda: compile(model, (x,), channels).graph,
                                 data, args.rounds, x, False))
    print(f"\n## Digits CNN (test accuracy on 450 held-out images; latency of a batch of {BATCH}, one thread)\n")
    print("| method | params | latency ms | x dense | accuracy | after fine-tune |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        speedup = rows[0]["latency_ms"] / r["latency_ms"]
        print(f"| {r['method']} | {r['params']} | {r['latency_ms']:.3f} | {speedup:.2f} | {r['accuracy']:.2f}% "
              f"| {r['tuned']:.2f}% |")


if __name__ == "__main__":
    main()

"""Structured pruning: nnforge's `prune` against Torch-Pruning (DepGraph) on the same models.

    python bench/prune.py                 # every model at 30/50/70%, then the latency table
    python bench/prune.py --quick         # fewer models, one ratio
    python bench/prune.py --tp-timeout 60 --json out.json

For each model and ratio both tools prune the same freshly built model with L1 magnitude
importance, uniform (local) ratios and the classifier left alone (Torch-Pruning needs that by
hand). Parameters and MACs are counted the same way for both: the Torch-Pruning result is
imported into nnforge and measured with nnforge's op registry. Seconds are analysis plus
pruning, on one torch thread, the fastest of `--repeat` runs of each (at most 3 of Torch-Pruning) (`nnforge import` is shown apart:
Torch-Pruning's tracing is inside its own time);
each Torch-Pruning run happens in a child process with a timeout and is reported as "> N s"
when it does not finish. The second table is onnxruntime CPU latency (one thread, median) of
the pruned ResNet-50 and MobileNetV2 at 224x224 (30% and 50%) against the originals, round-to 1
against round-to 8.

Needs the `bench` extra (`pip install -e .[bench]`): torch-pruning (it keeps the pinned torch).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler.backend import get_backend  # noqa: E402
from compiler.frontend import import_model  # noqa: E402
from compiler.metrics import graph_macs  # noqa: E402
from passes.prune import prune_graph  # noqa: E402
from tests.zoo import build  # noqa: E402


def chain(layers: int = 2000, width: int = 64) -> tuple[nn.Module, tuple]:
    mods: list[nn.Module] = []
    for _ in range(layers):
        mods += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*mods, nn.Linear(width, 10)).eval(), (torch.randn(1, width),)


MODELS = {
    # name: (builder, layers Torch-Pruning must be told not to prune)
    "resnet50@224": (lambda: _zoo("resnet50", input_size=224), lambda m: [m.fc]),
    "mobilenetv2@224": (lambda: _zoo("mobilenetv2", input_size=224, batch=1), lambda m: [m.classifier[1]]),
    "densenet": (lambda: _zoo("densenet"), lambda m: [m.classifier]),
    "unet": (lambda: _zoo("unet"), lambda m: [m.outc]),
    "yolo": (lambda: _zoo("yolo"), lambda m: [*(s[2] for s in m.detect.cv2), *(s[2] for s in m.detect.cv3),
                                               m.detect.dfl.conv]),
    "vit": (lambda: _zoo("vit"), lambda m: [m.head]),
    "chain-2000": (chain, lambda m: [m[-1]]),
}
QUICK = ("resnet50@224", "densenet", "chain-2000")


def _zoo(name: str, **kw) -> tuple[nn.Module, tuple]:
    z = build(name, **kw)
    return z.module, z.example_inputs


# ---- nnforge ------------------------------------------------------------------------------------
def run_nnforge(name: str, ratio: float, round_to: int = 1):
    model, inputs = MODELS[name][0]()
    start = time.perf_counter()
    graph = import_model(model, inputs)
    imported = time.perf_counter() - start
    before = (graph.param_count(), graph_macs(graph))
    start = time.perf_counter()
    prune_graph(graph, ratio=ratio, importance="l1", round_to=round_to)
    seconds = time.perf_counter() - start
    return graph, inputs, {"import_s": imported, "seconds": seconds, "params0": before[0], "macs0": before[1],
                           "params": graph.param_count(), "macs": graph_macs(graph)}


# ---- Torch-Pruning (in a child process, with a timeout) --------------------------------------------
def _tp_child(name: str, ratio: float, round_to: int, threads: int, queue) -> None:
    try:
        import torch_pruning as tp

        torch.set_num_threads(threads)
        model, inputs = MODELS[name][0]()
        kwargs = {}
        if name == "vit":  # heads: Torch-Pruning is told the head counts and patched afterwards
            attns = [b.attn for b in model.blocks]
            kwargs = dict(num_heads={a.qkv: a.num_heads for a in attns}, prune_num_heads=True,
                          prune_head_dims=False, head_pruning_ratio=ratio)
        start = time.perf_counter()
        pruner = tp.pruner.MetaPruner(model, inputs, importance=tp.importance.MagnitudeImportance(p=1),
                                      pruning_ratio=ratio, ignored_layers=MODELS[name][1](model),
                                      round_to=round_to if round_to > 1 else None, **kwargs)
        pruner.step()
        seconds = time.perf_counter() - start
        if name == "vit":
            for a in attns:
                a.num_heads = pruner.num_heads[a.qkv]
                a.head_dim = a.qkv.out_features // (3 * a.num_heads)
        result = {"seconds": seconds}
        try:
            graph = import_model(model.eval(), inputs)
            result.update(params=graph.param_count(), macs=graph_macs(graph))
        except Exception as exc:  # the pruned model no longer runs
            result["error"] = f"pruned model fails: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
        queue.put(result)
    except Exception as exc:
        queue.put({"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''}"})


def run_torch_pruning(name: str, ratio: float, round_to: int, timeout: float) -> dict:
    threads = torch.get_num_threads()
    ctx = mp.get_context("spawn")  # fork after torch started its thread pools can hang
    queue = ctx.Queue()
    proc = ctx.Process(target=_tp_child, args=(name, ratio, round_to, threads, queue))
    start = time.perf_counter()
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return {"timeout": timeout, "wall": time.perf_counter() - start}
    return queue.get() if not queue.empty() else {"error": f"exit code {proc.exitcode}"}


# ---- onnxruntime latency ----------------------------------------------------------------------------
def ort_latency(graph, inputs, runs: int = 30) -> float:
    import onnxruntime as ort

    model = get_backend("onnx")().lower(graph, None).obj
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feed = {v.name: t.numpy() for v, t in zip(graph.inputs, inputs)}
    for _ in range(3):
        sess.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


# ---- tables -------------------------------------------------------------------------------------------
def _m(x: float) -> str:
    return f"{x / 1e6:.2f}M" if x >= 1e5 else f"{x / 1e3:.1f}k"


def _delta(a, b) -> str:
    return f"{100.0 * (a - b) / b:+.1f}%" if a and b else "-"


def best_of(runs: list[dict]) -> dict:
    """The run with the fewest seconds (the machine is shared: the minimum is the least noisy)."""
    done = [r for r in runs if "seconds" in r]
    return min(done, key=lambda r: r["seconds"]) if done else runs[0]


def compare(names, ratios, timeout: float, repeat: int = 5) -> list[dict]:
    rows = []
    print("| model | ratio | params before | nnforge params | TP params | diff | nnforge MACs | TP MACs | diff "
          "| nnforge import s (first) | nnforge prune s | TP s | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        for ratio in ratios:
            runs = [run_nnforge(name, ratio)[2] for _ in range(repeat)]
            ours = dict(best_of(runs), import_s=runs[0]["import_s"])  # import: the first (cold) one
            tps = [run_torch_pruning(name, ratio, 1, timeout)]
            while len(tps) < min(repeat, 3) and "seconds" in tps[-1] and tps[-1]["seconds"] * 3 < timeout:
                tps.append(run_torch_pruning(name, ratio, 1, timeout))
            tp = best_of(tps)
            row = {"model": name, "ratio": ratio, "nnforge": ours, "torch_pruning": tp}
            rows.append(row)
            if "timeout" in tp:
                tp_s, speed = f"> {tp['timeout']:.0f}", f"> {tp['timeout'] / ours['seconds']:.0f}x"
            elif "seconds" in tp:
                tp_s, speed = f"{tp['seconds']:.2f}", f"{tp['seconds'] / ours['seconds']:.1f}x"
            else:
                tp_s, speed = "failed", "-"
            tp_p = _m(tp["params"]) if "params" in tp else tp.get("error", "-")[:40]
            tp_m = _m(tp["macs"]) if "macs" in tp else "-"
            print(f"| {name} | {ratio:.0%} | {_m(ours['params0'])} | {_m(ours['params'])} | {tp_p} "
                  f"| {_delta(ours['params'], tp.get('params'))} | {_m(ours['macs'])} | {tp_m} "
                  f"| {_delta(ours['macs'], tp.get('macs'))} | {ours['import_s']:.2f} | {ours['seconds']:.2f} "
                  f"| {tp_s} | {speed} |", flush=True)
    return rows


def latency(names, ratios=(0.3, 0.5)) -> list[dict]:
    rows = []
    print("\n| model | ratio | original: MACs, ms | round-to 1: MACs, ms (speed-up) | round-to 8: MACs, ms (speed-up) |")
    print("|---|---|---|---|---|")
    for name in names:
        model, inputs = MODELS[name][0]()
        graph = import_model(model, inputs)
        base, macs0 = ort_latency(graph, inputs), graph_macs(graph)
        for ratio in ratios:
            g1, g8 = run_nnforge(name, ratio, 1)[0], run_nnforge(name, ratio, 8)[0]
            r1, r8 = ort_latency(g1, inputs), ort_latency(g8, inputs)
            rows.append({"model": name, "ratio": ratio, "original_ms": base, "round_to_1_ms": r1, "round_to_8_ms": r8,
                         "macs": macs0, "round_to_1_macs": graph_macs(g1), "round_to_8_macs": graph_macs(g8)})
            print(f"| {name} | {ratio:.0%} | {_m(macs0)}, {base:.2f} | {_m(graph_macs(g1))}, {r1:.2f} ({base / r1:.2f}x) "
                  f"| {_m(graph_macs(g8))}, {r8:.2f} ({base / r8:.2f}x) |", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer models, ratio 0.5 only")
    parser.add_argument("--models", nargs="*", default=None, choices=list(MODELS))
    parser.add_argument("--ratios", nargs="*", type=float, default=None)
    parser.add_argument("--tp-timeout", type=float, default=300.0, help="seconds before a Torch-Pruning run is stopped")
    parser.add_argument("--repeat", type=int, default=5, help="runs per case; the fastest counts")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both tools (one: steadier numbers on a shared machine)")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--only-latency", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the measurements here")
    args = parser.parse_args()
    names = args.models or (list(QUICK) if args.quick else list(MODELS))
    ratios = args.ratios or ([0.5] if args.quick else [0.3, 0.5, 0.7])
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}; {torch.get_num_threads()} thread(s); fastest of {args.repeat} runs\n")
    result = {} if args.only_latency else {"compare": compare(names, ratios, args.tp_timeout, args.repeat)}
    if not args.no_latency:
        result["latency"] = latency([n for n in ("resnet50@224", "mobilenetv2@224") if n in MODELS])
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

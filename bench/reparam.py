"""Structural re-parameterization on a RepVGG-A0-shaped net: training form vs deployed form.

The net (tests/zoo/repvgg.py; widths 48, 48, 96, 192, 1280; depths 1, 2, 4, 14, 1; 1000
classes; 1x3x224x224 input; BatchNorm statistics randomized) is exported with nnforge's ONNX
backend three times, in one run:

* training form: no pipeline (3x3+BN, 1x1+BN and identity-BN branches, then adds);
* fold-bn only: BN folded into the convs, branches kept;
* deployed form: `fold-bn,reparam,dce`, every block one 3x3 conv.

Each is run in onnxruntime on the CPU (its default graph optimizations on, so it fuses Conv+BN
by itself; threads as given), warmed up, then timed in interleaved rounds; the median latency
and the ratio to the training form are printed, with node and parameter counts, the deployed
form's max difference to the training form, and the reparam pass's own seconds.

With `--torch`, the PyTorch backend's GraphModules of the training and deployed forms are timed
the same way (torch eager on the CPU, same thread count), as a second runtime.

    python bench/reparam.py [--runs 30] [--threads 1] [--torch]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler import compile  # noqa: E402
from compiler.frontend import import_model  # noqa: E402
from compiler.manager import PassManager  # noqa: E402
from compiler.metrics import graph_macs  # noqa: E402
from compiler.pipeline import parse_pipeline  # noqa: E402
from tests.zoo import randomize_batchnorm  # noqa: E402
from tests.zoo.repvgg import repvgg  # noqa: E402

FORMS = {"training": "", "fold-bn only": "fold-bn,dce", "deployed": "fold-bn,reparam,dce"}
TARGET_SPEEDUP, TARGET_PASS_SECONDS = 1.5, 0.5


def repvgg_a0() -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = repvgg(widths=(48, 96, 192, 1280), depths=(2, 4, 14, 1), num_classes=1000)
    randomize_batchnorm(model).eval()
    return model, torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))


def session(model_bytes: bytes, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def pass_seconds(model: torch.nn.Module, x: torch.Tensor, repeat: int = 3) -> float:
    """The reparam pass alone (best of `repeat`), on a graph that went through fold-bn."""
    best = float("inf")
    for _ in range(repeat):
        graph = import_model(model, (x,))
        PassManager(parse_pipeline("fold-bn").passes).run(graph)
        record = PassManager(parse_pipeline("reparam").passes, verify_each=False).run(graph)[0]
        best = min(best, record.seconds)
    return best


def torch_latency(model: torch.nn.Module, x: torch.Tensor, args) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    modules = {form: compile(model, (x,), pipeline=FORMS[form], target="pytorch").artifact
               for form in ("training", "deployed")}
    times: dict[str, list[float]] = {form: [] for form in modules}
    with torch.no_grad():
        for artifact in modules.values():
            for _ in range(args.warmup):
                artifact.run(x)
        for _ in range(args.runs):
            for form, artifact in modules.items():
                start = time.perf_counter()
                artifact.run(x)
                times[form].append(time.perf_counter() - start)
    torch.set_num_threads(threads)
    medians = {form: statistics.median(t) * 1e3 for form, t in times.items()}
    print(f"pytorch backend (torch eager, {args.threads} thread(s)): training {medians['training']:.2f} ms, "
          f"deployed {medians['deployed']:.2f} ms, speedup {medians['training'] / medians['deployed']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per form (median reported)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--torch", action="store_true", help="also time the PyTorch backend's modules")
    args = parser.parse_args()

    model, x = repvgg_a0()
    feed = {"x": x.numpy()}
    rows = {}
    for form, pipeline in FORMS.items():
        result = compile(model, (x,), pipeline=pipeline, target="onnx")
        proto = result.artifact.obj
        sess = session(proto.SerializeToString(), args.threads)
        name = sess.get_inputs()[0].name
        rows[form] = {"graph": result.graph, "onnx_nodes": len(proto.graph.node), "sess": sess,
                      "feed": {name: feed["x"]}, "times": [],
                      "params": result.graph.param_count(), "macs": graph_macs(result.graph),
                      "weights": sum(w.type.numel for w in result.graph.weights.values() if w.users)}
    for row in rows.values():
        for _ in range(args.warmup):
            row["out"] = row["sess"].run(None, row["feed"])[0]
    for _ in range(args.runs):  # interleaved, so drift on a shared machine hits every form alike
        for row in rows.values():
            start = time.perf_counter()
            row["sess"].run(None, row["feed"])
            row["times"].append(time.perf_counter() - start)

    base = statistics.median(rows["training"]["times"])
    print(f"RepVGG-A0 shape, 1x3x224x224; onnxruntime CPU, {args.threads} intra-op thread(s); "
          f"median of {args.runs} runs after {args.warmup} warm-up runs; torch {torch.__version__}")
    print(f"{'form':<14} {'IR nodes':>8} {'ONNX nodes':>10} {'params':>10} {'weights':>10} {'GMACs':>7} "
          f"{'median ms':>10} {'speedup':>8}")
    for form, row in rows.items():
        median = statistics.median(row["times"])
        print(f"{form:<14} {len(row['graph']):>8} {row['onnx_nodes']:>10} {row['params']:>10,} "
              f"{row['weights']:>10,} {row['macs'] / 1e9:>7.3f} {median * 1e3:>10.2f} {base / median:>7.2f}x")
    print(f"MAC ratio training / deployed: {rows['training']['macs'] / rows['deployed']['macs']:.2f}x")
    want = torch.from_numpy(rows["training"]["out"]).double()
    got = torch.from_numpy(rows["deployed"]["out"]).double()
    print(f"deployed vs training output: max abs diff {(got - want).abs().max():.3g}, "
          f"relative to the output's scale {(got - want).abs().max() / want.abs().max():.3g}")
    seconds = pass_seconds(model, x)
    speedup = base / statistics.median(rows["deployed"]["times"])
    print(f"reparam pass: {seconds:.3f} s (best of 3)")
    if args.torch:
        torch_latency(model, x, args)
    print(f"target: deployed >= {TARGET_SPEEDUP}x faster: {speedup:.2f}x "
          f"{'OK' if speedup >= TARGET_SPEEDUP else 'MISSED'}")
    print(f"target: reparam pass < {TARGET_PASS_SECONDS} s: {seconds:.3f} s "
          f"{'OK' if seconds < TARGET_PASS_SECONDS else 'MISSED'}")


if __name__ == "__main__":
    main()

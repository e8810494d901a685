"""target hls with structured sparsity: the digits CNN dense and simd-sparsified, at one frame rate.

    python bench/hls_sparsity.py                        # the table in docs/hls.md
    python bench/hls_sparsity.py --fps 20000 --part zu3eg --clock 200

The digits CNN of tests/test_quant_accuracy.py (conv 16, conv 32, pool, linear 64, linear 10) is
trained, then compiled to `target hls` (w8a8, calibrated on 256 training images) as it is and after
`simd-sparsify{simd=4,sparsity=S}`, with the cheapest folding that reaches the target fps. The
sparsified float model is evaluated as the pass leaves it and after a short fine-tune (`--epochs`,
the pruned weights held at zero); the design is built from the fine-tuned model (the pass then
removes exactly the groups that are zero). For each: the design's resources, the slowest stage's
cycles per frame, the lanes of its matrix-vector units (sum of PE x SIMD: the multipliers), and the
C simulation's accuracy on the 360 test images, checked bit for bit against the interpreter on the
integer graph (and every stage's counted cycles against its formula). Then, for each, the fastest
design that fits the part (fps=0, estimate only).
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler import compile  # noqa: E402
from compiler.interpreter import interpret  # noqa: E402
from compiler.sparse.annotation import SparsityAnnotation  # noqa: E402
from tests.test_quant_accuracy import BATCH, accuracy, digits_data, train_digits_cnn  # noqa: E402


def pruned(model: nn.Module, pipeline: str, epochs: int) -> tuple[float, nn.Module]:
    """(the float accuracy as the pass leaves the model, the model fine-tuned with its zeros held)."""
    xtr, ytr, xte, yte = digits_data()
    graph = compile(model, (xte[:BATCH],), pipeline, calibration_data=xtr[:7 * BATCH]).graph
    as_pruned = accuracy(lambda b: interpret(graph, b)[0], xte, yte)
    tuned = copy.deepcopy(model).train()
    params = dict(tuned.named_parameters())
    masks = {params[name]: v.data.ne(0) for name, v in graph.weights.items()
             if v.annotation(SparsityAnnotation) is not None}
    opt = torch.optim.Adam(tuned.parameters(), lr=1e-3)
    torch.manual_seed(0)
    for step in range(epochs * -(-len(xtr) // 64) + 1):
        with torch.no_grad():
            for p, mask in masks.items():
                p.mul_(mask)
        if step == epochs * -(-len(xtr) // 64):
            break
        idx = torch.randint(len(xtr), (64,))
        opt.zero_grad()
        nn.functional.cross_entropy(tuned(xtr[idx]), ytr[idx]).backward()
        opt.step()
    return as_pruned, tuned.eval()


def measure(model, pipeline: str, target: str) -> dict:
    xtr, _, xte, yte = digits_data()
    result = compile(model, (xte[:1],), pipeline, target=target, calibration_data=xtr[:256])
    artifact, info = result.artifact, result.artifact.info
    got = artifact.run(xte)[0]
    ref = torch.cat([interpret(artifact.obj.graph, xte[i:i + 1])[0] for i in range(len(xte))])
    stages = info["stages"]
    return {"float": accuracy(model, xte, yte), "csim": 100.0 * float((got.argmax(1) == yte).float().mean()),
            "exact": torch.equal(got, ref) and all(r["csim_cycles"] == r["cycles"] for r in stages),
            "warnings": info["warnings"], "cycles": info["folding"]["cycles"], "fps": info["folding"]["fps"],
            "lanes": sum(r["PE"] * r["SIMD"] for r in stages if r["kind"] == "mvu"), **info["totals"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="z7020")
    parser.add_argument("--clock", type=float, default=100.0)
    parser.add_argument("--fps", type=float, default=10000.0)
    parser.add_argument("--sparsity", default="0.5,0.75", help="comma-separated fractions of groups removed")
    parser.add_argument("--epochs", type=int, default=12, help="fine-tuning epochs after simd-sparsify")
    args = parser.parse_args()
    torch.set_num_threads(1)
    target = f"hls{{part={args.part},clock-mhz={args.clock:g},fps={args.fps:g}}}"
    model = train_digits_cnn()
    variants = [("dense", "")] + [(f"simd-sparsify {s}", f"simd-sparsify{{simd=4,sparsity={s}}}")
                                  for s in args.sparsity.split(",")]
    print(f"digits CNN on {args.part} at {args.clock:g} MHz, target {args.fps:,.0f} fps ({target}); "
          f"360 test images, torch {torch.__version__}\n")
    head = ("design", "DSP", "LUT", "BRAM18", "PE x SIMD", "cycles/frame", "fps", "float acc as pruned",
            f"float acc, {args.epochs}-epoch fine-tune", "C-sim acc", "bit-exact")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    xtr, _, xte, _ = digits_data()
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NNFORGE_HLS_CACHE"] = tmp
        for name, pipeline in variants:
            as_pruned, tuned = pruned(model, pipeline, args.epochs) if pipeline else (None, model)
            m = measure(tuned, pipeline, target)
            accs = (f"{as_pruned:.2f}% | {m['float']:.2f}%" if as_pruned is not None else f"{m['float']:.2f}% | -")
            print(f"| {name} | {m['DSP']:,} | {m['LUT']:,} | {m['BRAM18']:,} | {m['lanes']:,} | {m['cycles']:,} | "
                  f"{m['fps']:,.0f} | {accs} | {m['csim']:.2f}% | {m['exact']} |")
            for w in m["warnings"]:
                print(f"  warning: {w}")
            fastest = compile(tuned, (xte[:1],), pipeline, calibration_data=xtr[:256],
                              target=target.replace(f"fps={args.fps:g}", "fps=0,simulate=false")).artifact.info
            fold = fastest["folding"]
            lines.append(f"{name}: {fold['fps']:,.0f} fps ({fold['cycles']:,} cycles/frame), {fastest['totals']['DSP']} DSP, "
                         f"{fastest['totals']['LUT']:,} LUT; bound by {fold['binding']}")
    print(f"\nthe fastest design that fits {args.part} (fps=0):")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

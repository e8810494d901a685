"""Print the HLS estimate of a model as markdown: the per-stage table of the fastest design that
fits a part, and a folding sweep (target fps -> resources and what binds).

    python docs/hls_tables.py resnet18 --part u250
    python docs/hls_tables.py mobilenetv2 --part zu7ev --sweep 100,1000,5000
    python docs/hls_tables.py unet --part zu7ev
    python docs/hls_tables.py digits --part z7020 --clock 100 --sweep 1000,10000,100000
    python docs/hls_tables.py resnet18 --part u250 --pipeline "block-conv{block=16}"

Models: the zoo's resnet18 / mobilenetv2 at their test size (64x64 / 32x32 inputs), the zoo UNet
(64x64; bilinear upsampling on odd levels, transposed convolutions on the others), and the digits CNN of
tests/test_quant_accuracy.py (trained, calibrated on training images). No C++ is compiled.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.hls.report import markdown_table  # noqa: E402
from compiler import compile  # noqa: E402
from compiler.errors import NNForgeError  # noqa: E402


FOLDED_AFTER = 12      # stages: a longer per-stage table is folded into <details> (as docs/hls.md shows it)


def model(name: str):
    """(module, example input, calibration data)"""
    if name == "digits":
        from tests.test_quant_accuracy import digits_data, train_digits_cnn
        xtr, _, xte, _ = digits_data()
        return train_digits_cnn(), xte[:1], xtr[:256]
    from tests.zoo import build
    zoo = build(name, batch=1)
    return zoo.module, zoo.example_inputs[0], zoo.example_inputs[0]


def target(part: str, clock: float, fps: float = 0.0) -> str:
    return f"hls{{part={part},clock-mhz={clock:g},fps={fps:g},simulate=false}}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=["resnet18", "mobilenetv2", "unet", "digits"])
    parser.add_argument("--part", default="zu7ev")
    parser.add_argument("--clock", type=float, default=200.0)
    parser.add_argument("--sweep", default="", help="comma-separated target fps")
    parser.add_argument("--pipeline", default="", help="passes before the backend (block-conv, simd-sparsify, ...)")
    args = parser.parse_args()
    module, x, calib = model(args.model)
    start = time.perf_counter()
    result = compile(module, (x,), args.pipeline, target=target(args.part, args.clock), calibration_data=calib)
    seconds = time.perf_counter() - start
    info = result.artifact.info
    fold = info["folding"]
    passes = f" after {args.pipeline}" if args.pipeline else ""
    print(f"{args.model}{passes} on {info['part']} ({info['device']}) at {args.clock:g} MHz: {len(info['stages'])} stages, "
          f"estimated in {info['estimate_seconds']:.3f} s (lowering included: {seconds:.1f} s)\n")
    table = markdown_table(info)
    stages = len(info["stages"])
    if stages > FOLDED_AFTER:      # a long table folds away; its total row stays in view
        total = table.rstrip().splitlines()[-1].split("|")[8:12]
        print(f"<details><summary>per-stage table ({stages} stages)</summary>\n\n{table.rstrip()}\n\n</details>\n")
        print(f"Total: {', '.join(t.strip() for t in total)} (DSP, LUT, BRAM18, URAM).")
    else:
        print(table.rstrip())
    print(f"\nFastest design that fits: {fold['cycles']:,} cycles per frame, {fold['fps']:,.1f} fps, latency "
          f"{info['latency_cycles']:,} cycles; bound by {fold['binding']}.")
    if not args.sweep:
        return
    print("\n| target fps | cycles/frame | achieved fps | DSP | LUT | BRAM18 | URAM |\n|---|---|---|---|---|---|---|")
    for fps in (float(f) for f in args.sweep.split(",")):
        try:
            info = compile(module, (x,), args.pipeline, target=target(args.part, args.clock, fps),
                           calibration_data=calib).artifact.info
        except NNForgeError as exc:
            why = str(exc).splitlines()[0].split("is not reachable on ", 1)[-1].split(": ", 1)[-1]
            print(f"| {fps:,.0f} | not reachable: {why} ||||||")
            continue
        t = info["totals"]
        print(f"| {fps:,.0f} | {info['folding']['cycles']:,} | {info['folding']['fps']:,.1f} | {t['DSP']:,} | "
              f"{t['LUT']:,} | {t['BRAM18']:,} | {t['URAM']:,} |")


if __name__ == "__main__":
    main()

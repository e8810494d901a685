"""On-chip memory of a dataflow design with and without block convolution (estimates, no C++).

    python bench/hls_block_conv.py
    python bench/hls_block_conv.py --models resnet18 --pipelines "block-conv{block=16}" --part u250

For each model and pipeline, `target hls` folds the design for the fastest rate that fits the
part, and the table sums, over its stages, the memory that holds activations: line buffers
(window generators and max pools), reorder buffers (the cut into blocks, the stitch back, other
shape changes) and the FIFOs of skip connections, in kilobits of storage and in the BRAM18 / LUT
the estimate gives them, with the throughput and latency of the design. Weights are the same with
and without blocks and are left out. Each blocked pipeline runs twice: with the cut into blocks
and the stitch back as stages, and with `host-reorder=true` (the host sends and takes blocks).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.hls.parts import get_part  # noqa: E402
from backends.hls.resources import Resources, memory, total  # noqa: E402
from backends.hls.stages import Add, Concat, LineBufferWindow, MaxPool, Reorder  # noqa: E402
from compiler import compile  # noqa: E402

MODELS = ("resnet18", "unet", "mobilenetv2")
PIPELINES = ("", "block-conv{block=16}", "block-conv{pattern=hierarchical,grid=2}")


def activation_memory(design, part) -> dict[str, tuple[float, Resources]]:
    """(kilobits, resources) of the line buffers, reorder buffers and skip FIFOs."""
    lines, reorders, fifos = [], [], []
    for s in design.stages:
        bits = s.inputs[0].elem.bits if s.inputs else 0
        if isinstance(s, (LineBufferWindow, MaxPool)):
            g = s.geometry
            lines.append((g.rows * g.width * g.channels * bits, memory(g.channels * bits, g.rows * g.width, part)))
        elif isinstance(s, Reorder):
            c = s.inputs[0].channels
            reorders.append((s.depth * c * bits, memory(bits, s.depth * c, part)))
        if isinstance(s, (Add, Concat)):
            fifos += [(p.depth * p.word_bits, s.stream_resources(part)) for p in s.inputs]
    return {kind: (sum(b for b, _ in items) / 1024, total(r for _, r in items))
            for kind, items in (("line buffers", lines), ("reorder buffers", reorders), ("skip FIFOs", fifos))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--pipelines", default=";".join(PIPELINES), help="';'-separated, '' for none")
    parser.add_argument("--part", default="u250")
    args = parser.parse_args()
    part = get_part(args.part)
    from tests.zoo import build
    print(f"{'model':12} {'pipeline':55} {'line buf Kb':>11} {'reorder Kb':>10} {'FIFO Kb':>8} "
          f"{'BRAM18':>7} {'LUT':>8} {'fps':>9} {'latency':>9}")
    for name in args.models.split(","):
        zoo = build(name, batch=1)
        x = zoo.example_inputs[0]
        runs = [(p, host) for p in args.pipelines.split(";") for host in ((False, True) if p else (False,))]
        for pipeline, host in runs:
            options = f"part={part.name},simulate=false,host-reorder={str(host).lower()}"
            artifact = compile(zoo.module, (x,), pipeline, target=f"hls{{{options}}}", calibration_data=x).artifact
            memory = activation_memory(artifact.obj.design, part)
            used = total(r for _, r in memory.values())
            kb = [memory[k][0] for k in ("line buffers", "reorder buffers", "skip FIFOs")]
            info = artifact.info
            label = (pipeline or "(plain)") + (" host-reorder" if host else "")
            print(f"{name:12} {label:55} {kb[0]:11.1f} {kb[1]:10.1f} {kb[2]:8.1f} {used.bram18:7,} "
                  f"{used.lut:8,} {info['folding']['fps']:9,.0f} {info['latency_cycles']:9,}")


if __name__ == "__main__":
    main()

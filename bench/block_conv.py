"""Block convolution on VGG-16 and ResNet-18 at 224: off-chip traffic, on-chip buffer, pass time, latency.

Two nets, 1x3x224x224, BatchNorm statistics randomized, maps 16-bit:

* VGG-16-shaped: VGG-16's 13 3x3 convolutions (64-64, 128-128, 256x3, 512x3, 512x3) and 5
  max-pools, with a global-average-pool + 512x1000 classifier instead of the three dense layers
  (those hold 90% of VGG-16's weights but no feature maps);
* ResNet-18 (tests/zoo/resnet.py, torchvision layout).

For each net and pattern (F28: fixed 28x28 blocks; H4x4: a 4x4 grid on every map) the script
prints the off-chip feature-map traffic per frame of the three schedules the pass analyses (layer
by layer, line-buffer streaming, fused blocks) under one on-chip budget, the fused schedule's
buffer and weight traffic, the block-conv pass's own time (best of 3, on an imported graph), and
the blocked graph's onnxruntime latency against the original's (interleaved rounds, median).

    python bench/block_conv.py [--buffer-kb 2048] [--runs 5] [--threads 1] [--plot docs/images]
"""
from __future__ import annotations

import argparse
from collections import OrderedDict
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler import compile  # noqa: E402
from compiler.frontend import import_model  # noqa: E402
from compiler.manager import PassManager  # noqa: E402
from compiler.pipeline import parse_pipeline  # noqa: E402
from tests.zoo import build, randomize_batchnorm  # noqa: E402

PATTERNS = {"F28": "pattern=fixed,block=28", "H4x4": "pattern=hierarchical,grid=4"}
TARGET_REDUCTION, TARGET_PASS_SECONDS = 10.0, 0.5
KB = 1024


class VGG16(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers, c = [], 3
        for stage, (width, depth) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], 1):
            for i in range(1, depth + 1):
                layers += [(f"conv{stage}_{i}", nn.Conv2d(c, width, 3, padding=1)),
                           (f"bn{stage}_{i}", nn.BatchNorm2d(width)), (f"relu{stage}_{i}", nn.ReLU())]
                c = width
            layers.append((f"pool{stage}", nn.MaxPool2d(2)))
        self.features = nn.Sequential(OrderedDict(layers))
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


def nets(size: int) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    torch.manual_seed(0)
    vgg = randomize_batchnorm(VGG16()).eval()
    resnet = build("resnet18", batch=1, input_size=size)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    return {"VGG-16": (vgg, x), "ResNet-18": (resnet.module, x)}


def pass_run(model: nn.Module, x: torch.Tensor, spec: str, repeat: int = 3):
    """The block-conv pass alone (best of `repeat`) on fold-bn'd graphs; the last record's stats."""
    best, record = float("inf"), None
    for _ in range(repeat):
        graph = import_model(model, (x,))
        PassManager(parse_pipeline("fold-bn").passes).run(graph)
        record = PassManager(parse_pipeline(spec).passes, verify_each=False).run(graph)[0]
        best = min(best, record.seconds)
    return best, record.stats


def latencies(model: nn.Module, x: torch.Tensor, specs: dict[str, str], args) -> dict[str, float]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = args.threads, 1, 3
    sessions = {}
    for label, spec in specs.items():
        proto = compile(model, (x,), pipeline=spec, target="onnx").artifact.obj
        sessions[label] = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = x.numpy()
    times: dict[str, list[float]] = {label: [] for label in sessions}
    for sess in sessions.values():
        sess.run(None, {sess.get_inputs()[0].name: feed})
    for _ in range(args.runs):  # interleaved, so drift on a shared machine hits every graph alike
        for label, sess in sessions.items():
            start = time.perf_counter()
            sess.run(None, {sess.get_inputs()[0].name: feed})
            times[label].append(time.perf_counter() - start)
    return {label: statistics.median(t) * 1e3 for label, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buffer-kb", type=float, default=2048, help="on-chip budget of the fused schedules")
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--runs", type=int, default=5, help="timed onnxruntime runs per graph (median)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--plot", type=Path, default=None, help="folder for one memory plot per net and pattern")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(f"1x3x{args.size}x{args.size}, 16-bit maps, budget {args.buffer_kb:g} KB; pass time best of 3; "
          f"onnxruntime CPU, {args.threads} thread(s), median of {args.runs}; torch {torch.__version__}")
    print(f"{'net':<10} {'pattern':<7} {'blocked':>7} {'layer-by-layer MB':>17} {'line-buffer MB':>14} "
          f"{'fused MB':>9} {'fused/lbl':>9} {'fused buf KB':>12} {'fused weights MB':>16} {'pass s':>7} "
          f"{'ort ms':>8} {'blocked ms':>10} {'slowdown':>8}")
    checks = []
    for net, (model, x) in nets(args.size).items():
        specs = {label: f"fold-bn,block-conv{{{opts},buffer-kb={args.buffer_kb:g}}}" for label, opts in PATTERNS.items()}
        ms = latencies(model, x, {"original": "fold-bn", **specs}, args)
        for label, opts in PATTERNS.items():
            seconds, stats = pass_run(model, x, f"block-conv{{{opts},buffer-kb={args.buffer_kb:g}}}")
            traffic = {k: stats[f"traffic_kb.{k}"] / KB for k in ("layer", "line", "fused")}
            reduction = traffic["layer"] / traffic["fused"]
            weights = _fused_weight_mb(model, x, opts, args.buffer_kb, args.plot, f"{net}-{label}")
            print(f"{net:<10} {label:<7} {stats['blocked_layers']:>3}/{stats['blocked_layers'] + stats['plain_layers']:<3} "
                  f"{traffic['layer']:>17.2f} {traffic['line']:>14.2f} {traffic['fused']:>9.2f} "
                  f"{reduction:>8.1f}x {stats['fused_buffer_kb']:>12.0f} {weights:>16.1f} {seconds:>7.3f} "
                  f"{ms['original']:>8.1f} {ms[label]:>10.1f} {ms[label] / ms['original']:>7.2f}x")
            checks.append((net, label, reduction, seconds))
    budget_sweep(nets(args.size)["VGG-16"])
    for net, label, reduction, seconds in checks:
        if net == "VGG-16":
            print(f"target: {net} {label} fused traffic >= {TARGET_REDUCTION:g}x below layer by layer within "
                  f"{args.buffer_kb:g} KB: {reduction:.1f}x {'OK' if reduction >= TARGET_REDUCTION else 'MISSED'}")
    slowest = max(s for *_, s in checks)
    print(f"target: block-conv pass < {TARGET_PASS_SECONDS} s: slowest {slowest:.3f} s "
          f"{'OK' if slowest < TARGET_PASS_SECONDS else 'MISSED'}")


def budget_sweep(net: tuple[nn.Module, torch.Tensor]) -> None:
    """VGG-16's fused schedule under smaller and larger budgets (the analysis only)."""
    model, x = net
    graph = import_model(model, (x,))
    PassManager(parse_pipeline("fold-bn").passes).run(graph)
    print("VGG-16 fused blocks by budget: traffic reduction vs layer by layer (buffer KB used)")
    for label, opts in PATTERNS.items():
        cells = []
        for kb in (512, 1024, 2048, 4096):
            _, analysis = parse_pipeline(f"block-conv{{{opts},buffer-kb={kb}}}").passes[0].analyze(graph)
            fused = analysis.schedules["fused"]
            cells.append(f"{kb:>5} KB: {analysis.schedules['layer'].traffic / fused.traffic:5.1f}x "
                         f"({fused.peak_buffer / KB:4.0f})")
        print(f"  {label:<5} " + "   ".join(cells))


def _fused_weight_mb(model, x, opts: str, buffer_kb: float, plot: Path | None, name: str) -> float:
    """Weight traffic of the fused schedule (weights re-read per tile where they do not fit)."""
    graph = import_model(model, (x,))
    PassManager(parse_pipeline("fold-bn").passes).run(graph)
    block_conv = parse_pipeline(f"block-conv{{{opts},buffer-kb={buffer_kb:g}}}").passes[0]
    if plot is not None:
        block_conv.describe_memory(graph, plot=plot / f"block-conv-{name.lower()}.png")
    _, analysis = block_conv.analyze(graph)
    return analysis.schedules["fused"].weight_traffic / KB / KB


if __name__ == "__main__":
    main()

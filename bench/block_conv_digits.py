"""Accuracy of block convolution on real data, before and after a short fine-tune.

scikit-learn's digits (8x8 images, upsampled bilinearly to 32x32 so blocks cover real structure;
1300 train / 450 test, fixed split) train a small CNN (five 3x3 conv+BN+ReLU layers, two
max-pools, global average pooling, a linear classifier). A copy of the trained model goes
through `block-conv` for each pattern and padding mode; the PyTorch backend's module (weights as
parameters, sharing memory with the copy) is evaluated as it comes out of the pass, then
fine-tuned for a few epochs with every parameter trainable and evaluated again.

The IR's BatchNorm is the inference form (running statistics as inputs). Blocking shifts the
statistics of every map, so during fine-tuning the script lets the module's `F.batch_norm` calls
use batch statistics and update the running ones (training=True, momentum 0.1), as training a
BatchNorm network does; evaluation uses the re-estimated running statistics.

    python bench/block_conv_digits.py [--epochs 12] [--finetune 3]
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler import compile  # noqa: E402
from tests.test_prune_digits import BATCH, train  # noqa: E402  (the same training loop as the tests)

PATTERNS = {"F8": "pattern=fixed,block=8", "F16": "pattern=fixed,block=16", "H4x4": "pattern=hierarchical,grid=4"}
PADDINGS = ("zeros", "replicate", "reflect")


def digits_32() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)  # background stays 0
    y = torch.tensor(data.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    return x[:1300], y[:1300], x[1300:1750], y[1300:1750]


def cnn() -> nn.Module:
    def unit(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*unit(1, 16), *unit(16, 32), nn.MaxPool2d(2), *unit(32, 64), *unit(64, 64),
                         nn.MaxPool2d(2), *unit(64, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def batch_norm_statistics(module: torch.fx.GraphModule, update: bool) -> None:
    """Make the module's BatchNorm calls use (and update) batch statistics, or the running ones."""
    for node in module.graph.nodes:
        if node.target is F.batch_norm:
            node.kwargs = {**node.kwargs, "training": update, "momentum": 0.1}
    module.recompile()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    correct = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in zip(x.split(BATCH), y.split(BATCH)))
    return 100.0 * correct / len(y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12, help="training epochs of the original model")
    parser.add_argument("--finetune", type=int, default=3, help="fine-tuning epochs of each blocked model")
    args = parser.parse_args()
    torch.manual_seed(0)
    x_train, y_train, x_test, y_test = digits_32()
    start = time.perf_counter()
    model = cnn()
    train(model.train(), x_train, y_train, [3e-3] * (args.epochs - 2) + [3e-4] * 2)
    model.eval()
    base = accuracy(model, x_test, y_test)
    print(f"digits upsampled to 32x32, 1300 train / 450 test; original CNN trained {args.epochs} epochs "
          f"in {time.perf_counter() - start:.0f} s: test accuracy {base:.2f}%")
    print(f"fine-tune: {args.finetune} epochs, Adam, every parameter trainable, BatchNorm on batch statistics")
    print(f"{'pattern':<8} {'padding':<10} {'blocked':>7} {'before %':>9} {'after %':>8} {'vs original':>11}")
    for label, options in PATTERNS.items():
        for padding in PADDINGS:
            result = compile(copy.deepcopy(model), (x_test[:BATCH],),
                             pipeline=f"block-conv{{{options},padding={padding}}}", target="pytorch")
            blocked = result.artifact.obj
            stats = result.report.passes[0].stats
            before = accuracy(blocked, x_test, y_test)
            for p in blocked.parameters():
                p.requires_grad_(True)
            batch_norm_statistics(blocked, update=True)
            train(blocked, x_train, y_train, [1e-3] * (args.finetune - 1) + [3e-4])
            batch_norm_statistics(blocked, update=False)
            after = accuracy(blocked, x_test, y_test)
            print(f"{label:<8} {padding:<10} {stats['blocked_layers']:>3}/{stats['blocked_layers'] + stats['plain_layers']:<3} "
                  f"{before:>9.2f} {after:>8.2f} {after - base:>+11.2f}")


if __name__ == "__main__":
    main()

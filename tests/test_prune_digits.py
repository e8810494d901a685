"""Accuracy after pruning on real data: a small CNN on scikit-learn's bundled digits set.

The CNN trains in seconds, is imported, pruned by 50% of the channels of every group, lowered to
the PyTorch backend and fine-tuned briefly; its test accuracy must stay within 1 point of the
unpruned model's. The numbers are printed (run with -s) and recorded in docs/pruning.md.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from compiler.backend import get_backend
from compiler.frontend import import_model
from passes.prune import prune_graph

sklearn_datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn is a dev extra")

BATCH = 50  # the IR has static shapes: every batch has this size


def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    data = sklearn_datasets.load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    return x[:1300], y[:1300], x[1300:1750], y[1300:1750]


def cnn(width: int = 32) -> nn.Module:
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*block(1, width), *block(width, 2 * width), nn.MaxPool2d(2),
                         *block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4 * width, 10))


def train(model, x, y, lrs: list[float]) -> None:
    """One epoch per learning rate (Adam, batches of BATCH)."""
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad])
    gen = torch.Generator().manual_seed(1)
    for lr in lrs:
        for group in opt.param_groups:
            group["lr"] = lr
        for idx in torch.randperm(len(y), generator=gen).split(BATCH):
            if len(idx) != BATCH:
                continue
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()


@torch.no_grad()
def accuracy(model, x, y) -> float:
    correct = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in zip(x.split(BATCH), y.split(BATCH)))
    return 100.0 * correct / len(y)


def test_pruned_cnn_keeps_its_accuracy_on_digits(single_thread):
    torch.manual_seed(0)
    x_train, y_train, x_test, y_test = digits()
    model = cnn()
    train(model.train(), x_train, y_train, [1e-2] * 8 + [1e-3] * 2)
    model.eval()
    base = accuracy(model, x_test, y_test)

    graph = import_model(model, (x_test[:BATCH],))
    params = graph.param_count()
    stats = prune_graph(graph, ratio=0.5, importance="l1")
    assert stats["removed_channels"] == stats["channels"] // 2
    pruned = get_backend("pytorch")().lower(graph, None).obj
    after_prune = accuracy(pruned, x_test, y_test)
    for p in pruned.parameters():
        p.requires_grad_(True)
    train(pruned, x_train, y_train, [3e-3] * 3 + [1e-3] * 2 + [3e-4])
    tuned = accuracy(pruned, x_test, y_test)
    print(f"\ndigits CNN: {params} -> {graph.param_count()} params; test accuracy {base:.2f}% -> "
          f"{after_prune:.2f}% pruned -> {tuned:.2f}% after 6 epochs of fine-tuning")
    assert base > 95.0
    assert tuned >= base - 1.0

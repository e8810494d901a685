"""Accuracy on real data: a CNN trained on scikit-learn's digits in the test, then quantized.

W8A8 per channel must stay within 0.5 point of FP32; W4A8, FP4 E2M1 W4A4 (with and without the
LLM-FP4 search) and MXFP4/NVFP4 weights are reported (pytest -s prints the table). bench/quant.py
reuses `digits_data` and `train_digits_cnn`.
"""
from __future__ import annotations

from functools import lru_cache

import pytest
import torch
from torch import nn

from compiler import compile
from compiler.interpreter import interpret

BATCH = 40  # the graph's static batch; the 360 test images are 9 batches


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = nn.functional.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


@lru_cache(maxsize=1)
def digits_data():
    """(train x, train y, test x, test y): 1437 / 360 8x8 images scaled to [0, 1]."""
    datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn is not installed (dev extra)")
    digits = datasets.load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    return x[360:], y[360:], x[:360], y[:360]


@lru_cache(maxsize=1)
def train_digits_cnn(epochs: int = 12) -> DigitsCNN:
    torch.manual_seed(0)
    return fit_digits(DigitsCNN(), epochs)


def fit_digits(model: nn.Module, epochs: int) -> nn.Module:
    """Adam on the digits training set, batches of 64 in a seeded order (the caller seeds torch)."""
    xtr, ytr, _, _ = digits_data()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
    return model.eval()


def accuracy(run, x: torch.Tensor, y: torch.Tensor) -> float:
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), BATCH):
            correct += int((run(x[i:i + BATCH]).argmax(1) == y[i:i + BATCH]).sum())
    return 100.0 * correct / len(x)


def quantized_accuracy(model, pipeline: str, calibration_batches: int = 4):
    xtr, _, xte, yte = digits_data()
    result = compile(model, (xte[:BATCH],), pipeline, calibration_data=xtr[:BATCH * calibration_batches])
    return accuracy(lambda b: interpret(result.graph, b)[0], xte, yte), result


CONFIGS = {
    "W8A8 int8 per-channel": "fold-bn,quantize{weights=int8,activations=int8}",
    "W4A8 int4 per-channel": "fold-bn,quantize{weights=int4,activations=int8}",
    "W4A8 mxfp4": "fold-bn,quantize{weights=mxfp4,activations=int8}",
    "W4A8 nvfp4": "fold-bn,quantize{weights=nvfp4,activations=int8}",
    "W4A4 fp4-e2m1": "fold-bn,quantize{weights=fp4-e2m1,activations=fp4-e2m1}",
    "W4A4 fp4 + search (fp-format)": "fold-bn,quantize{weights=fp4-e2m1,activations=fp4-e2m1,search=fp-format,"
                                     "candidates=50}",
}


@pytest.fixture(scope="module")
def digits_results(single_thread):
    model = train_digits_cnn()
    _, _, xte, yte = digits_data()
    fp32 = accuracy(model, xte, yte)
    rows = {name: quantized_accuracy(model, pipe)[0] for name, pipe in CONFIGS.items()}
    print(f"\ndigits CNN, 360 test images: FP32 {fp32:.2f}%")
    for name, acc in rows.items():
        print(f"  {name:32s} {acc:6.2f}%  ({acc - fp32:+.2f})")
    return fp32, rows


def test_fp32_model_learns_digits(digits_results):
    fp32, _ = digits_results
    assert fp32 > 95.0


def test_w8a8_per_channel_within_half_a_point(digits_results):
    fp32, rows = digits_results
    assert rows["W8A8 int8 per-channel"] >= fp32 - 0.5


def test_low_bit_configurations_are_reported_and_sane(digits_results):
    fp32, rows = digits_results
    assert rows["W4A8 int4 per-channel"] > fp32 - 5.0
    assert rows["W4A4 fp4 + search (fp-format)"] > 50.0

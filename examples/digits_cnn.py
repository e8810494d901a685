"""The bundled trained model: a small RepVGG-style CNN for scikit-learn's 8x8 digits.

Each block trains with three parallel branches (3x3 conv + BN, 1x1 conv + BN, identity BN) that
`reparam` fuses into one 3x3 convolution, so the demo pipeline has real work for
re-parameterization, pruning and quantization. The trained weights ship next to this file
(`digits_cnn.safetensors`, 42 KB), with 160 real training images for calibration
(`digits_calibration.npy`) and the 360 held-out test images (`digits_test.npz`, 8-bit pixels as
scikit-learn ships them), so evaluating needs no scikit-learn:

    nnforge report examples/digits_cnn.py:build --pipeline examples/digits_deploy.nnf \\
        --targets all --eval examples/digits_cnn.py:evaluate \\
        --calibration-data examples/digits_calibration.npy

`python examples/digits_cnn.py` retrains on scikit-learn's digits (a few seconds on one core) and
rewrites the three files. `evaluate(predict)` is the accuracy on the 360 held-out test images.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "digits_cnn.safetensors"
CALIBRATION = HERE / "digits_calibration.npy"
TEST = HERE / "digits_test.npz"
BATCH = 8          # the compiled graph's static batch
TEST_IMAGES = 360  # held out from training; the first 360 of a seeded permutation


class RepBlock(nn.Module):
    """3x3 conv + BN, 1x1 conv + BN and, when shapes allow, an identity BN, summed, then ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.dense = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
        self.point = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.identity = nn.BatchNorm2d(cout) if cin == cout else None

    def forward(self, x):
        y = self.dense(x) + self.point(x)
        if self.identity is not None:
            y = y + self.identity(x)
        return torch.relu(y)


class DigitsRepCNN(nn.Module):
    def __init__(self, width: int = 16):
        super().__init__()
        self.stage1 = RepBlock(1, width)
        self.stage2 = RepBlock(width, width)
        self.stage3 = RepBlock(width, 2 * width)
        self.fc = nn.Linear(2 * width * 2 * 2, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(self.stage2(self.stage1(x)), 2)
        x = nn.functional.max_pool2d(self.stage3(x), 2)
        return self.fc(x.flatten(1))


@lru_cache(maxsize=1)
def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train x, train y, test x, test y): 1437 / 360 images in [0, 1], shape [N, 1, 8, 8]."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    return x[TEST_IMAGES:], y[TEST_IMAGES:], x[:TEST_IMAGES], y[:TEST_IMAGES]


def build():
    """The trained model (shipped weights) and one batch of real (training) images."""
    from safetensors.torch import load_file

    model = DigitsRepCNN()
    model.load_state_dict(load_file(str(WEIGHTS)))
    example = torch.from_numpy(np.load(CALIBRATION, allow_pickle=False)[:BATCH])
    return model.eval(), (example,)


@lru_cache(maxsize=1)
def test_images() -> tuple[torch.Tensor, torch.Tensor]:
    """The 360 held-out images ([360, 1, 8, 8] in [0, 1]) and their labels."""
    data = np.load(TEST, allow_pickle=False)
    return torch.from_numpy(data["images"]).float().unsqueeze(1) / 16.0, torch.from_numpy(data["labels"]).long()


def evaluate(predict) -> float:
    """Top-1 accuracy (%) on the 360 test images; `predict(x)` returns the logits of any batch."""
    x, y = test_images()
    return 100.0 * float((predict(x).argmax(1) == y).float().mean())


def train(epochs: int = 15, slimming: float = 1e-3) -> DigitsRepCNN:
    """Adam on the training images, with an L1 penalty on BatchNorm scales (network slimming):
    channels the model can spare end up with small scales, hence small fused kernels after
    `reparam`, which is what magnitude pruning removes first."""
    xtr, ytr, _, _ = digits()
    torch.manual_seed(0)
    model = DigitsRepCNN()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    scales = [m.weight for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for _ in range(epochs):
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
            (loss + slimming * sum(s.abs().sum() for s in scales)).backward()
            opt.step()
    return model.eval()


if __name__ == "__main__":
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    trained = train()
    save_file({k: v.contiguous() for k, v in trained.state_dict().items()}, str(WEIGHTS))
    xtr, _, xte, yte = digits()
    np.save(CALIBRATION, xtr[:160].numpy())
    np.savez_compressed(TEST, images=(xte.squeeze(1) * 16).round().to(torch.uint8).numpy(),
                        labels=yte.to(torch.uint8).numpy())
    test_images.cache_clear()
    with torch.no_grad():
        print(f"test accuracy {evaluate(trained):.2f}%; wrote {WEIGHTS.name}, {CALIBRATION.name} and {TEST.name}")

"""Small model factories the CLI tests load as `tests/models/cli_models.py:NAME`."""
import torch
import torch.nn.functional as F
from torch import nn


class CircularPad(nn.Module):
    """Circular padding has no ONNX lowering before opset 19."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular")

    def forward(self, x):
        return self.conv(x)


def circular_pad():
    return CircularPad(), (torch.randn(1, 3, 8, 8),)


def not_a_module():
    return {"weights": torch.zeros(3)}


def raises():
    raise RuntimeError("the factory failed")


def two_inputs():
    class Add(nn.Module):
        def forward(self, a, b):
            return F.relu(a + b)
    return Add()


class TiedEmbedding(nn.Module):
    """A language-model head that reuses the token embedding (one weight, read twice)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.mix = nn.Linear(16, 16)

    def forward(self, ids):
        return F.linear(self.mix(self.embed(ids)), self.embed.weight)


def tied_embedding():
    return TiedEmbedding(), (torch.randint(0, 50, (1, 7)),)

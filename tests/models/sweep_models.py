"""A tiny CNN and evaluation files for the cost-report and sweep tests.

`tiny()` builds the model (`tests/models/sweep_models.py:tiny` on the command line).
`write_eval(folder, body)` writes `folder/evaluate.py` whose `evaluate(predict)` scores agreement
with the float model's own predictions on fixed inputs (saved next to it as `data.npz`, with the
float logits), so quantization and pruning show up as lost agreement without a dataset; `body`
replaces the function body to make evaluations that fail in chosen ways.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import torch
from torch import nn

BATCH = 4


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(x.mean((2, 3)))


def tiny():
    torch.manual_seed(0)
    model = TinyNet()
    for bn in (model.bn1, model.bn2):  # trained-looking statistics
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 1.5)
    return model.eval(), (torch.randn(BATCH, 1, 8, 8, generator=torch.Generator().manual_seed(2)),)


AGREEMENT = """
data = np.load(Path(__file__).with_name("data.npz"))
return 100.0 * float((predict(data["x"]).argmax(1).numpy() == data["labels"]).mean())
"""


def write_eval(folder: Path, body: str = AGREEMENT) -> str:
    """Write the evaluation file and its data; returns the `--eval` spec."""
    model, _ = tiny()
    x = torch.randn(22, 1, 8, 8, generator=torch.Generator().manual_seed(3))  # not a multiple of the batch
    with torch.no_grad():
        logits = model(x).numpy()
    np.savez(folder / "data.npz", x=x.numpy(), labels=logits.argmax(1), logits=logits)
    source = "from pathlib import Path\nimport os\nimport numpy as np\n\n\ndef evaluate(predict):\n" + \
        textwrap.indent(textwrap.dedent(body).strip(), "    ") + "\n"
    (folder / "evaluate.py").write_text(source)
    return f"{folder / 'evaluate.py'}:evaluate"

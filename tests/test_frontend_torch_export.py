"""The torch.export frontend and the capture choice, on small hand-written models.

What the frontend promises: static mask building and position ids fold to constants while what
depends on the inputs stays IR ops; returned structures flatten in pytree order with their names
kept; attention variants match torch; every unsupported op is listed in one error; `auto` falls
back to torch.fx and says why; a model neither path captures gets one error naming both.
"""
from __future__ import annotations

import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compiler import compile
from compiler.cli import main
from compiler.errors import FrontendError, UserInputError
from compiler.frontend import import_with_facts
from tests.prune_util import assert_close, run_backends
from tests.zoo import randomize_batchnorm


def capture(model, *inputs, how="export"):
    return import_with_facts(model.eval(), inputs, capture=how)


class MaskedAttention(nn.Module):
    """Position ids and a causal mask from shapes (static); the padding mask and its cumsum
    position ids from the input (data-dependent)."""

    def __init__(self):
        super().__init__()
        self.tokens, self.positions = nn.Embedding(11, 8), nn.Embedding(16, 8)
        self.out = nn.Linear(8, 8)

    def forward(self, ids, mask):
        length = ids.shape[1]
        static_positions = torch.arange(length).unsqueeze(0)
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        keep = causal[None] & mask[:, None, :].bool()
        padded_positions = (mask.cumsum(-1) - 1).clamp(min=0)
        h = self.tokens(ids) + self.positions(static_positions) + self.positions(padded_positions)
        scores = (h @ h.transpose(1, 2)).masked_fill(~keep, -1e4)
        return self.out(scores.softmax(-1) @ h)


def test_static_masks_and_positions_fold_and_data_dependent_ones_stay_ops():
    ids = torch.randint(0, 11, (2, 6))
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    model = MaskedAttention().eval()
    graph = capture(model, ids, mask).graph
    ops = [n.op for n in graph.nodes]
    assert all(any(v is not None and (v.data is None or v.is_param) for v in n.inputs) for n in graph.nodes), \
        "a node computes from constants only: static work was not folded"
    assert "cumsum" in ops and "logical_and" in ops  # built from the mask input
    position_lookups = [n for n in graph.nodes if n.op == "embedding" and n.inputs[1].name == "positions.weight"]
    assert sorted(n.inputs[0].is_constant for n in position_lookups) == [False, True]
    with torch.no_grad():
        expected = [model(ids, mask)]
    torch_out, onnx_out = run_backends(graph, [ids, mask])
    assert_close(torch_out, expected, "pytorch backend", 1e-4, 1e-5)
    assert_close(onnx_out, expected, "onnxruntime", 1e-4, 1e-5)


class Structured(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 3), nn.Linear(4, 2)

    def forward(self, x):
        return {"logits": self.a(x), "aux": (self.b(x), None, x.sum(-1))}


def test_outputs_flatten_in_pytree_order_and_keep_their_names():
    x = torch.randn(2, 4)
    model = Structured().eval()
    imported = capture(model, x)
    assert imported.facts["outputs"] == ["logits", "aux.0", "aux.2"]
    assert [v.shape for v in imported.graph.outputs] == [(2, 3), (2, 2), (2,)]


class Attention(nn.Module):
    def __init__(self, variant):
        super().__init__()
        self.variant = variant

    def forward(self, q, k, v, bias):
        if self.variant == "causal":
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        if self.variant == "float-mask":
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        if self.variant == "bool-mask":
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias > 0, scale=0.3)
        return F.scaled_dot_product_attention(q, k[:, :2], v[:, :2], enable_gqa=True)


@pytest.mark.parametrize("variant", ["causal", "float-mask", "bool-mask", "gqa"])
def test_scaled_dot_product_attention_matches_torch(variant):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 5, 8, generator=g) for _ in range(3))
    bias = torch.randn(2, 1, 5, 5, generator=g)
    model = Attention(variant)
    graph = capture(model, q, k, v, bias).graph  # the frontend checks the interpreter against torch
    assert [n.op for n in graph.nodes].count("matmul") == 2
    with torch.no_grad():
        expected = [model(q, k, v, bias)]
    assert_close(run_backends(graph, [q, k, v, bias])[1], expected, "onnxruntime", 1e-4, 1e-5)


class Unsupported(nn.Module):
    def forward(self, x):
        return torch.flip(x, [1]) + torch.special.i0(x)


def test_every_unsupported_op_is_listed_in_one_error():
    with pytest.raises(FrontendError) as info:
        capture(Unsupported(), torch.randn(2, 3))
    message = info.value.render()
    assert "aten.flip" in message and "aten.i0" in message and "no IR translation" in message
    assert "test_frontend_torch_export.py" in info.value.where


class ScalesItsInput(nn.Module):
    """Scales its input in place: torch.fx translates that functionally, torch.export refuses."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        x.mul_(2)
        return self.lin(x)


def test_auto_falls_back_to_fx_and_says_why():
    imported = capture(ScalesItsInput(), torch.randn(2, 4), how="auto")
    assert imported.facts["capture"] == "fx"
    assert imported.facts["export"].startswith("failed, fell back to torch.fx")
    assert "user input mutation" in imported.facts["export"]


def test_fx_capture_is_kept_on_request():
    facts = capture(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), torch.randn(1, 4), how="fx").facts
    assert (facts["capture"], facts["export"]) == ("fx", "not tried (capture=fx)")
    with pytest.raises(UserInputError, match="unknown capture"):
        capture(nn.ReLU(), torch.randn(1), how="dynamo")


def test_a_model_neither_path_captures_gets_one_error_naming_both(tmp_path, capsys):
    with pytest.raises(FrontendError) as info:
        capture(Unsupported(), torch.randn(2, 3), how="auto")
    lines = info.value.what.splitlines()
    assert lines[0].startswith("neither torch.export nor torch.fx could capture Unsupported")
    assert lines[1].strip().startswith("torch.export: ") and "aten.flip" in lines[1]
    assert lines[2].strip().startswith("torch.fx: ") and "torch.flip" in lines[2]
    model_file = tmp_path / "bad_model.py"
    model_file.write_text(textwrap.dedent("""
        import torch
        from torch import nn

        class Bad(nn.Module):
            def forward(self, x):
                return torch.flip(x, [1]) + 1
    """))
    code = main(["compile", f"{model_file}:Bad", "--input-shape", "2x3"])
    err = capsys.readouterr().err
    assert code == 2
    assert "torch.export:" in err and "torch.fx:" in err and "Traceback" not in err


def test_training_mode_batchnorm_is_refused_with_a_hint():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    with pytest.raises(FrontendError, match="eval"):
        import_with_facts(model, (torch.randn(2, 3, 8, 8),), capture="export")


def test_fold_bn_folds_exported_batchnorm_exactly():
    model = randomize_batchnorm(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                              nn.Conv2d(8, 8, 3, groups=2), nn.BatchNorm2d(8))).eval()
    result = compile(model, (torch.randn(2, 3, 10, 10),), "fold-bn", capture="export", check_equivalence=True)
    assert result.report.model["import"]["capture"] == "export"
    assert result.report.passes[0].stats["folded"] == 2
    assert "batch_norm" not in [n.op for n in result.graph.nodes]
    assert result.report.passes[0].max_abs_diff < 1e-5


def test_cli_capture_option_reaches_the_report(tmp_path, capsys):
    model_file = tmp_path / "tiny.py"
    model_file.write_text("from torch import nn\n\ndef build():\n    return nn.Sequential(nn.Linear(4, 2), nn.ReLU())\n")
    code = main(["compile", f"{model_file}:build", "--input-shape", "1x4", "--capture", "export"])
    out = capsys.readouterr().out
    assert code == 0
    assert "captured with torch.export (capture=export" in out

"""LSTM and GRU: nn.LSTM / nn.GRU through torch.fx, ONNX's batch-first layout, and what pruning
(input features only, with w_ih's columns) and quantization (none: float, saying why) do with them."""
from __future__ import annotations

import pytest
import torch
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator
from torch import nn

from compiler import compile
from frontends.onnx import import_onnx
from compiler.interpreter import interpret
from passes.prune import analyze, prune_graph
from tests.prune_util import group_of, zero_then_prune
from tests.onnx_models import make_model, randn, value_info

pytestmark = pytest.mark.usefixtures("single_thread")


class Speech(nn.Module):
    """A stacked bidirectional LSTM feeding a GRU, as OCR / speech heads use them."""

    def __init__(self, batch_first: bool = True):
        super().__init__()
        self.lstm = nn.LSTM(6, 8, num_layers=2, bidirectional=True, batch_first=batch_first)
        self.gru = nn.GRU(16, 5, batch_first=batch_first)
        self.head = nn.Linear(5, 3)

    def forward(self, x, h0, c0):
        y, (h, c) = self.lstm(x, (h0, c0))
        z, g = self.gru(y)
        return self.head(z), h, c, g


def _speech_inputs(batch_first: bool = True):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((2, 7, 6) if batch_first else (7, 2, 6), generator=gen)
    return x, torch.randn(4, 2, 8, generator=gen), torch.randn(4, 2, 8, generator=gen)


@pytest.mark.parametrize("batch_first", [True, False])
def test_nn_lstm_and_gru_compile_to_both_backends(batch_first):
    torch.manual_seed(0)
    model, inputs = Speech(batch_first).eval(), _speech_inputs(batch_first)
    result = compile(model, inputs, target=["pytorch", "onnx"])
    assert [n.op for n in result.graph.nodes].count("lstm") == 2 and "gru" in [n.op for n in result.graph.nodes]
    expected = model(*inputs)
    for artifact in result.artifacts:
        for got, want in zip(artifact.run(*inputs), expected):
            torch.testing.assert_close(got, want.detach(), rtol=1e-4, atol=1e-5)


def test_unbatched_input_without_initial_states():
    torch.manual_seed(1)
    model = nn.Sequential(nn.GRU(4, 3, num_layers=2)).eval()
    x = torch.randn(5, 4)
    graph = compile(model, (x,)).graph
    for got, want in zip(interpret(graph, x), model(x)):
        torch.testing.assert_close(got, want.detach(), rtol=1e-5, atol=1e-6)


def test_onnx_batch_first_layout_matches_the_reference_evaluator():
    """onnxruntime has no kernel for layout=1; onnx's reference evaluator does."""
    w, r, b = randn(2, 16, 3, scale=0.5), randn(2, 16, 4, scale=0.5), randn(2, 32, scale=0.5)
    x, h0 = randn(3, 5, 3), randn(3, 2, 4)
    node = helper.make_node("LSTM", ["x", "w", "r", "b", "", "h0"], ["y", "y_h"], hidden_size=4, layout=1,
                            direction="bidirectional")
    model = make_model([node], [value_info("x", TensorProto.FLOAT, x.shape), value_info("h0", TensorProto.FLOAT,
                                                                                        h0.shape)],
                       [value_info("y", TensorProto.FLOAT, None), value_info("y_h", TensorProto.FLOAT, None)],
                       {"w": w, "r": r, "b": b}, opset=14)
    expected = ReferenceEvaluator(model).run(None, {"x": x, "h0": h0})
    graph = import_onnx(model)
    for got, want in zip(interpret(graph, torch.from_numpy(x), torch.from_numpy(h0)), expected):
        assert got.shape == want.shape
        torch.testing.assert_close(got, torch.from_numpy(want), rtol=1e-4, atol=1e-5)


class ConvThenLstm(nn.Module):
    """A convolutional front end feeding a recurrent layer (CRNN-style OCR, keyword spotting)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 16, 3, padding=1)
        self.lstm = nn.LSTM(16, 8, bidirectional=True, batch_first=True)
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        y, _ = self.lstm(torch.relu(self.conv(x)).transpose(1, 2))
        return self.head(y)


def test_prune_removes_features_a_recurrent_layer_reads_together_with_its_input_columns():
    torch.manual_seed(3)
    model, x = ConvThenLstm().eval(), torch.randn(2, 4, 10)
    graph = compile(model, (x,)).graph
    analysis = analyze(graph)
    group = group_of(analysis, "conv.weight")
    assert group.prunable and group.size == 16
    zero_then_prune(graph, (x,), group, analysis)
    assert graph.weights["lstm.weight_ih_l0"].shape[2] < 16 and graph.weights["lstm.weight_hh_l0"].shape == (2, 32, 8)


def test_prune_and_quantize_skip_recurrent_layers_with_a_reason():
    torch.manual_seed(2)
    model, inputs = Speech().eval(), _speech_inputs()
    graph = compile(model, inputs).graph
    shapes = {name: w.shape for name, w in graph.weights.items()}
    stats = prune_graph(graph, ratio=0.5)
    assert stats["removed_channels"] == 0     # every channel reaches a recurrent layer or an output
    assert {name: w.shape for name, w in graph.weights.items()} == shapes
    quantized = compile(model, inputs, "quantize", calibration_data=[inputs]).report.passes[0].stats
    assert quantized["float.lstm"] == 2 and quantized["float.gru"] == 1
    assert "stays float (no quantized form): gru x1, lstm x2" in quantized["warning"]

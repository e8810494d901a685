"""Third-party ONNX files as users bring them (small equivalents built in tests/onnx_models/thirdparty.py):
each defect found on the real files has its regression test here."""
from __future__ import annotations

import torch

from frontends.onnx import import_onnx
from passes.prune import prune_graph
from tests.onnx_models import ort_run
from tests.onnx_models.thirdparty import BYTES, byte_classifier, byte_inputs
from tests.prune_util import run_backends


def test_prune_keeps_a_one_hot_vocabulary_built_by_equal_against_a_range():
    model = byte_classifier()
    graph = import_onnx(model)
    stats = prune_graph(graph, ratio=0.3)
    assert stats["removed_channels"] > 0                      # the hidden layers still prune
    assert graph.weights["vocab"].shape == (BYTES,)           # every byte value is still recognized
    assert graph.weights["embed"].shape[0] == BYTES
    feeds = {"bytes": byte_inputs()}
    torch_out, onnx_out = run_backends(graph, (torch.from_numpy(feeds["bytes"]),))
    assert onnx_out[0].shape == torch.from_numpy(ort_run(model, feeds)[0]).shape
    torch.testing.assert_close(onnx_out[0], torch_out[0], rtol=1e-4, atol=1e-5)

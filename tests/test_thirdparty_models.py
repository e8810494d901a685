"""Third-party ONNX files as users bring them (small equivalents built in tests/onnx_models/thirdparty.py):
each defect found on the real files has its regression test here."""
from __future__ import annotations

import numpy as np
import onnx
import torch

from compiler import compile
from frontends.onnx import import_onnx
from passes.prune import prune_graph
from tests.onnx_models import ort_run
from tests.onnx_models.thirdparty import TF_INPUTS, TF_OUTPUTS, BYTES, byte_classifier, byte_inputs, tf_named
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


def test_compiled_onnx_keeps_the_original_names_order_and_dtypes(tmp_path):
    source = tmp_path / "tf.onnx"
    onnx.save(tf_named(), source)
    shapes = [(2, 3, 8, 8), (2, 4, 1, 1)]
    result = compile(source, input_shapes=shapes, pipeline="fold-bn", target=["onnx", "pytorch"],
                     output=[tmp_path / "out.onnx", tmp_path / "torch"])
    assert result.report.passes[0].stats["folded"] == 1
    compiled = onnx.load(tmp_path / "out.onnx")
    original = onnx.load(source)
    assert [i.name for i in compiled.graph.input] == list(TF_INPUTS)
    assert [o.name for o in compiled.graph.output] == list(TF_OUTPUTS)
    for mine, theirs in zip([*compiled.graph.input, *compiled.graph.output],
                            [*original.graph.input, *original.graph.output]):
        assert mine.type.tensor_type.elem_type == theirs.type.tensor_type.elem_type
    assert result.artifact.info["specialised_dims"][0] == "'serving_default_input_2:0' dim 0 (unk__7) = 2"
    rng = np.random.default_rng(1)
    feeds = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in zip(TF_INPUTS, shapes)}
    for got, want in zip(ort_run(compiled, feeds), ort_run(original, feeds)):  # fed by name, like a library
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    model_py = (tmp_path / "torch" / "model.py").read_text()
    assert f"SOURCE_INPUTS = {TF_INPUTS!r}" in model_py and f"SOURCE_OUTPUTS = {TF_OUTPUTS!r}" in model_py

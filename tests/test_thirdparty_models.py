"""Third-party ONNX files as users bring them (small equivalents built in tests/onnx_models/thirdparty.py):
each defect found on the real files has its regression test here."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from compiler import compile
from compiler.errors import FrontendError
from frontends.onnx import import_onnx
from passes.prune import prune_graph
from tests.onnx_models import ort_run, single_op, value_info
from tests.onnx_models.thirdparty import (BYTES, TF_INPUTS, TF_OUTPUTS, byte_classifier, byte_inputs,
                                          keras_attention, opset9_classifier, sample_rate_switch,
                                          tf_named)

RTOL, ATOL = 1e-4, 1e-5


def assert_round_trips(graph, model, feeds: dict[str, np.ndarray]) -> None:
    """Both backends against onnxruntime on the original file, within rtol/atol of the output scale."""
    expected = ort_run(model, feeds)
    torch_out, onnx_out = run_backends(graph, tuple(torch.from_numpy(a) for a in feeds.values()))
    for results in (torch_out, onnx_out):
        for got, want in zip(results, expected):
            want = torch.from_numpy(want)
            scale = float(want.abs().max()) if want.is_floating_point() and want.numel() else 1.0
            torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL * max(scale, 1.0))
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


def test_an_opset_9_model_is_converted_and_says_so(tmp_path, capsys):
    path = tmp_path / "old.onnx"
    onnx.save(opset9_classifier(), path)
    graph = import_onnx(path)
    assert graph.interface.notes == ["old.onnx uses opset 9: converted to opset 11 with onnx.version_converter"]
    assert_round_trips(graph, onnx.load(path), {"x": np.random.default_rng(0).standard_normal((1, 3, 8, 8),
                                                                                            np.float32)})
    from compiler.cli import main
    assert main(["compile", str(path), "--target", "onnx", "-o", str(tmp_path / "new.onnx")]) == 0
    assert "note: old.onnx uses opset 9: converted to opset 11" in capsys.readouterr().out


def test_keras_attention_with_einsum_and_a_folded_reduce_prod_round_trips():
    model = keras_attention()
    graph = import_onnx(model)
    ops = [n.op for n in graph.nodes]
    assert ops.count("einsum") == 6 and "reduce_prod" not in ops    # ReduceProd folded with the shapes
    assert_round_trips(graph, model, {"x": np.random.default_rng(2).standard_normal((1, 6, 16), np.float32)})


def test_reduce_prod_of_run_time_values_is_refused_clearly():
    model, _ = single_op("ReduceProd", [np.ones((2, 3), np.float32)], {"keepdims": 0}, opset=13)
    with pytest.raises(FrontendError, match="computed at run time, but nnforge needs it to be static"):
        import_onnx(model)


@pytest.mark.parametrize("samples, picked", [(128, "tanh"), (64, "sigmoid")])
def test_if_with_a_condition_that_folds_is_inlined(samples, picked):
    model = sample_rate_switch()
    graph = import_onnx(model, input_shapes=[(1, samples)])
    assert picked in [n.op for n in graph.nodes] and not any(n.op == "relu" for n in graph.nodes)
    feeds = {"audio": np.random.default_rng(3).standard_normal((1, samples), np.float32)}
    assert_round_trips(graph, model, feeds)


def test_if_on_input_data_is_refused_naming_the_condition():
    model = sample_rate_switch()
    model.graph.node[2].input[0] = "flag"     # the Equal now compares with a graph input
    model.graph.input.append(value_info("flag", onnx.TensorProto.INT64, []))
    with pytest.raises(FrontendError, match="depends on the input data"):
        import_onnx(model, input_shapes=[(1, 128), ()])


def test_an_artifact_the_runtime_refuses_skips_its_check_with_the_reason(monkeypatch):
    from backends.onnx.runtime import OrtRunner

    def refuse(self, inputs):
        raise RuntimeError("[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : no kernel\nmore detail")
    monkeypatch.setattr(OrtRunner, "__call__", refuse)
    result = compile(byte_classifier(), target="onnx", check_equivalence=True)
    row = result.report.artifacts[0]
    assert row["equivalence"] == "skipped: RuntimeError: [ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : no kernel"
    assert "max_abs_diff" not in row


def test_keras2onnx_prelu_exports_its_slope_once(tmp_path):
    """MTCNN-style stages from keras2onnx: Conv -> PRelu with a [C, 1, 1] slope initializer."""
    from onnx import TensorProto, helper
    from tests.onnx_models import make_model, randn
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv"),
             helper.make_node("PRelu", ["c", "alpha"], ["y"], name="prelu")]
    model = make_model(nodes, [value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
                       [value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])],
                       {"w": randn(4, 3, 3, 3), "b": randn(4), "alpha": randn(4, 1, 1)}, 13, "pnet")
    graph = import_onnx(model)
    compile(graph, target="onnx", output=tmp_path / "pnet.onnx")
    exported = onnx.load(tmp_path / "pnet.onnx")
    read = {name for node in exported.graph.node for name in node.input}
    assert {t.name for t in exported.graph.initializer} <= read
    assert sum(1 for t in exported.graph.initializer if t.dims == [4, 1, 1]) == 1   # the slope, once
    assert_round_trips(import_onnx(model), model, {"x": np.random.default_rng(4).standard_normal((1, 3, 6, 6),
                                                                                             np.float32)})

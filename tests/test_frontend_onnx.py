"""The ONNX frontend: every mapped ONNX op against onnxruntime, shape binding, names, constant
folding, the CLI, and clean errors for unsupported, malformed and hostile models.

Each op case (tests/onnx_models/cases.py) is imported, then run three ways, all compared with
onnxruntime on the original model (rtol 1e-4, atol 1e-5; integers and bools exactly): the IR
interpreter, the ONNX backend's model in onnxruntime, and the PyTorch backend's module.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from compiler.backend import get_backend
from compiler.cli import main as cli_main
from compiler.errors import FrontendError, NNForgeError, UserInputError
from compiler.frontend import import_model
from compiler.interpreter import interpret
from frontends.onnx import MAPPINGS, check_model, import_onnx
from tests.onnx_models import make_model, ort_run, randn, shape_chain, small_cnn, value_info
from tests.onnx_models.cases import CASES, Case

RTOL, ATOL = 1e-4, 1e-5


def assert_same(got: list[torch.Tensor], expected: list[np.ndarray], what: str) -> None:
    assert len(got) == len(expected), what
    for g, e in zip(got, expected):
        e = torch.from_numpy(np.asarray(e))
        assert g.dtype == e.dtype and g.shape == e.shape, f"{what}: {g.dtype}{list(g.shape)} vs {e.dtype}{list(e.shape)}"
        if e.is_floating_point():
            torch.testing.assert_close(g, e, rtol=RTOL, atol=ATOL, equal_nan=True, msg=what)
        else:
            assert torch.equal(g, e), what


def feeds_in_order(graph, feeds: dict[str, np.ndarray]) -> list[torch.Tensor]:
    return [torch.from_numpy(feeds[name]) for name in feeds]


# ---- every mapped op, three ways -----------------------------------------------------------
def test_every_mapped_onnx_op_has_a_case():
    assert set(MAPPINGS) <= {c.op for c in CASES}, set(MAPPINGS) - {c.op for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_op_matches_onnxruntime(case: Case, tmp_path):
    model, feeds = case.build()
    expected = ort_run(model, feeds)
    graph = import_onnx(model)
    inputs = feeds_in_order(graph, feeds)
    assert_same(interpret(graph, *inputs), expected, "IR interpreter")
    onnx_artifact = get_backend("onnx")(opset=min(max(case.opset, 17), 23)).lower(graph, None)
    assert_same(onnx_artifact.run(*inputs), expected, "ONNX backend")
    torch_artifact = get_backend("pytorch")().lower(graph, None)
    assert_same(torch_artifact.run(*inputs), expected, "PyTorch backend")


# ---- names, sources, folding ---------------------------------------------------------------
def test_names_and_sources_follow_the_onnx_model():
    graph = import_onnx(small_cnn(batch="N"), input_shapes=[(2, 3, 8, 8)])
    assert [v.name for v in graph.inputs] == ["x"] and [v.name for v in graph.outputs] == ["probs"]
    by_name = {n.name: n for n in graph.nodes}
    assert by_name["conv"].op == "conv" and by_name["conv"].source == "conv (Conv)"
    assert by_name["logits"].op == "linear" and by_name["logits"].source == "fc (Gemm)"
    assert {"w", "b", "fc_w", "fc_b"} <= set(graph.weights)
    assert graph.weights["w"].is_param


def test_exporter_shape_arithmetic_folds_to_static_values():
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape leaves a single static reshape."""
    for opset in (11, 13):
        model = shape_chain(opset)
        graph = import_onnx(model, input_shapes=[(5, 3, 4, 4)])
        assert [n.op for n in graph.nodes] == ["reshape", "matmul", "add"]
        assert graph.nodes[0].attrs["shape"] == (5, 48)
        x = randn(5, 3, 4, 4)
        assert_same(interpret(graph, torch.from_numpy(x)), ort_run(model, {"x": x}), f"opset {opset}")


def test_torch_export_with_dynamic_axes_imports_at_any_bound_shape(tmp_path):
    class Net(torch.nn.Module):
        def forward(self, x):
            n, c, h, w = x.shape
            y = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
            return y.reshape(n, c, -1).mean(-1) + x.flatten(1).sum(1, keepdim=True)

    path = tmp_path / "dyn.onnx"
    torch.onnx.export(Net(), (torch.randn(1, 3, 8, 8),), str(path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"}}, opset_version=13)
    for shape in [(2, 3, 8, 8), (1, 3, 5, 7)]:
        graph = import_onnx(path, input_shapes=[shape])
        x = randn(*shape)
        assert_same(interpret(graph, torch.from_numpy(x)), ort_run(path, {"x": x}), str(shape))
        assert not {"shape", "gather"} & {n.op for n in graph.nodes}


def test_inputs_bind_from_input_shapes_example_inputs_or_declared_dims(tmp_path):
    path = tmp_path / "cnn.onnx"
    onnx.save(small_cnn(batch="N"), path)
    assert import_onnx(str(path), input_shapes=[(3, 3, 8, 8)]).inputs[0].shape == (3, 3, 8, 8)
    assert import_onnx(path, example_inputs=[torch.randn(2, 3, 8, 8)]).outputs[0].shape == (2, 5)
    assert import_onnx(small_cnn(batch=4)).inputs[0].shape == (4, 3, 8, 8)
    assert import_model(path, None, [(1, 3, 8, 8)]).outputs[0].shape == (1, 5)  # dispatch by suffix


@pytest.mark.parametrize("shapes, message", [
    (None, "dynamic input dimensions: 'x' (N, 3, 8, 8)"),
    ([(1, 3, 8, 8), (1, 3, 8, 8)], "takes 1 input(s)"),
    ([(1, 3, 8)], "has rank 4"),
    ([(1, 4, 8, 8)], "differs at dim 1"),
    ([(10**12, 3, 8, 8)], "would need"),
])
def test_input_shape_mistakes_are_user_errors(shapes, message):
    with pytest.raises(UserInputError) as info:
        import_onnx(small_cnn(batch="N"), input_shapes=shapes)
    assert message in info.value.render()


def test_a_shape_the_model_cannot_take_names_the_node_and_opset():
    model = small_cnn(batch="N")
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "h"
    with pytest.raises(FrontendError) as info:
        import_onnx(model, input_shapes=[(1, 3, 10, 8)])
    text = info.value.render()
    assert "node 'fc' (Gemm, opset 13)" in text and "x' (N, 3, h, 8)" in text


def test_declared_output_shapes_must_match():
    model = small_cnn()
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 7
    with pytest.raises(FrontendError, match="declares output 'probs'"):
        import_onnx(model)


def test_declared_input_contradicting_the_weights():
    model = small_cnn()
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 4
    with pytest.raises(FrontendError, match=r"node 'conv' \(Conv, opset 13\)") as info:
        import_onnx(model)
    assert "channels" in info.value.render()


# ---- unsupported ops: all listed at once ---------------------------------------------------
def unsupported_model() -> onnx.ModelProto:
    branch = helper.make_graph([helper.make_node("Identity", ["x"], ["b"])], "branch", [],
                               [value_info("b", TensorProto.FLOAT, [1, 4])])
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Det", ["r"], ["e"], name="det"),
             helper.make_node("Det", ["e"], ["e2"], name="det_2"),
             helper.make_node("Loop", ["", "cond"], ["i"], name="loopy", body=branch),
             helper.make_node("FusedConv", ["i"], ["f"], name="fused", domain="com.microsoft"),
             helper.make_node("Gelu", ["f"], ["y"], name="gelu_too_new")]
    model = make_model(nodes, [value_info("x", TensorProto.FLOAT, [1, 4]), value_info("cond", TensorProto.BOOL, [])],
                       [value_info("y", TensorProto.FLOAT, [1, 4])], opset=17)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model


def test_every_unsupported_op_is_listed_in_one_error():
    with pytest.raises(FrontendError) as info:
        import_onnx(unsupported_model())
    text = info.value.render()
    assert "uses 4 ONNX op type(s) nnforge cannot import, in 5 node(s)" in text
    for part in ("Det (no mapping in nnforge): 2 nodes: 'det', 'det_2'", "Loop (control flow",
                 "com.microsoft::FusedConv (custom domain 'com.microsoft')", "Gelu (not defined at opset 17)"):
        assert part in text
    assert [u.op_type for u in check_model(unsupported_model())] == ["Det", "Loop", "FusedConv", "Gelu"]


def test_cli_inspect_lists_every_unsupported_op(tmp_path, capsys):
    path = tmp_path / "bad.onnx"
    onnx.save(unsupported_model(), path)
    assert cli_main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert all(op in err for op in ("Det", "Loop", "FusedConv", "Gelu"))


# ---- the CLI on .onnx files ------------------------------------------------------------------
def test_cli_compiles_an_onnx_file_to_onnx_and_pytorch(tmp_path, capsys):
    src = tmp_path / "chain.onnx"
    onnx.save(shape_chain(), src)
    out = tmp_path / "out.onnx"
    assert cli_main(["compile", str(src), "--input-shape", "2x3x4x4", "--target", "onnx", "-o", str(out),
                     "--pipeline", "fold-constants,dce", "--check-equivalence"]) == 0
    x = randn(2, 3, 4, 4)
    assert_same([torch.from_numpy(r) for r in ort_run(out, {"x": x})], ort_run(src, {"x": x}), "compiled")
    assert cli_main(["compile", str(src), "--input-shape", "2x3x4x4", "--target", "pytorch",
                     "-o", str(tmp_path / "pt")]) == 0
    assert (tmp_path / "pt" / "model.py").is_file()
    assert cli_main(["compile", str(src), "--target", "onnx", "-o", str(tmp_path / "no.onnx")]) == 2
    assert "--input-shape" in capsys.readouterr().err
    assert not (tmp_path / "no.onnx").exists()


def test_cli_inspect_shows_onnx_node_names(tmp_path, capsys):
    path = tmp_path / "cnn.onnx"
    onnx.save(small_cnn(), path)
    assert cli_main(["inspect", str(path), "--ir"]) == 0
    out = capsys.readouterr().out
    assert "%conv" in out and "fc (Gemm)" in out


# ---- bad and hostile files: clean errors, exit code 2, nothing read outside the folder -------
def saved(tmp_path: Path, model: onnx.ModelProto, name: str = "model.onnx") -> Path:
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def expect_clean_error(path_or_model, match: str, *, shapes=None, exc=NNForgeError) -> str:
    with pytest.raises(exc) as info:
        import_onnx(path_or_model, input_shapes=shapes)
    text = info.value.render()
    assert match in text, text
    if isinstance(path_or_model, Path):
        args = ["inspect", str(path_or_model)] + [a for s in (shapes or []) for a in ("--input-shape", "x".join(map(str, s)))]
        assert cli_main(args) == 2
    return text


def test_truncated_corrupted_and_empty_files(tmp_path):
    data = small_cnn().SerializeToString()
    expect_clean_error(saved_bytes(tmp_path, "truncated.onnx", data[: len(data) // 2]), "not a valid ONNX model")
    expect_clean_error(saved_bytes(tmp_path, "empty.onnx", b""), "it has no graph")
    garbage = bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8))
    expect_clean_error(saved_bytes(tmp_path, "garbage.onnx", garbage), "")
    expect_clean_error(saved_bytes(tmp_path, "text.onnx", b"this is not a model\n" * 20), "")
    (tmp_path / "folder.onnx").mkdir()
    expect_clean_error(tmp_path / "folder.onnx", "not found", exc=UserInputError)


def saved_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("edit, match", [
    (lambda m: m.opset_import[0].__setattr__("version", 99), "opset 99, newer than the installed onnx"),
    (lambda m: m.opset_import[0].__setattr__("version", 1), "onnx.version_converter could not convert it"),
    (lambda m: m.opset_import[0].__setattr__("version", 0), "declares opset 0, which does not exist"),
    (lambda m: m.__setattr__("ir_version", 99), "IR version 99"),
    (lambda m: m.opset_import.pop(), "does not import the standard ai.onnx opset"),
])
def test_unsupported_versions(tmp_path, edit, match):
    model = small_cnn()
    edit(model)
    expect_clean_error(saved(tmp_path, model), match)


def test_initializers_that_lie_about_their_size(tmp_path):
    model = small_cnn()
    w = model.graph.initializer[0]
    w.raw_data = w.raw_data[:-4]
    expect_clean_error(saved(tmp_path, model), "initializer 'w' declares dims [4, 3, 3, 3]")
    model = small_cnn()
    del model.graph.initializer[0].dims[:]
    model.graph.initializer[0].dims.extend([10**6, 10**6, 3, 3])
    expect_clean_error(saved(tmp_path, model), "more than the 16 GiB allowed")


@pytest.mark.parametrize("node, inits, match", [
    (helper.make_node("ConstantOfShape", ["shape"], ["c"]), {"shape": np.array([10**6, 10**6], np.int64)}, "would need"),
    (helper.make_node("Expand", ["x", "shape"], ["c"]), {"shape": np.array([10**7, 10**7, 3, 1], np.int64)}, "would need"),
    (helper.make_node("Tile", ["x", "reps"], ["c"]), {"reps": np.array([10**8, 10**8], np.int64)}, "would need"),
    (helper.make_node("Range", ["a", "b", "d"], ["c"]),
     {"a": np.array(0, np.int64), "b": np.array(2**62, np.int64), "d": np.array(1, np.int64)}, "would need"),
    (helper.make_node("Resize", ["x", "", "", "sizes"], ["c"]), {"sizes": np.array([10**6, 10**6], np.int64)},
     "would need"),
])
def test_dims_that_would_allocate_terabytes(tmp_path, node, inits, match):
    model = make_model([node], [value_info("x", TensorProto.FLOAT, [3, 4])], [helper.make_empty_tensor_value_info("c")],
                       inits, opset=18)
    text = expect_clean_error(saved(tmp_path, model), match)
    assert f"({node.op_type}, opset 18)" in text


def external_model(tmp_path: Path) -> Path:
    """small_cnn with every initializer in weights.bin next to the model."""
    folder = tmp_path / "model"
    folder.mkdir()
    path = folder / "cnn.onnx"
    onnx.save(small_cnn(), path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    return path


def set_external(path: Path, **entries: str) -> None:
    model = onnx.load(path, load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key in entries:
                entry.value = entries[entry.key]
    path.write_bytes(model.SerializeToString())


def test_external_data_is_read_from_the_models_folder(tmp_path):
    path = external_model(tmp_path)
    graph = import_onnx(path)
    x = randn(1, 3, 8, 8)
    assert_same(interpret(graph, torch.from_numpy(x)), ort_run(path, {"x": x}), "external data")
    with pytest.raises(FrontendError, match="import the .onnx file by its path"):
        import_onnx(onnx.load(path, load_external_data=False))


@pytest.mark.parametrize("location, match", [
    ("../outside.bin", "points outside the model's folder"),
    ("sub/../../outside.bin", "points outside the model's folder"),
    ("link.bin", "points outside the model's folder"),
    ("/etc/passwd", "is an absolute path"),
    ("missing.bin", "is missing"),
])
def test_external_data_never_leaves_the_models_folder(tmp_path, monkeypatch, location, match):
    path = external_model(tmp_path)
    outside = tmp_path / "outside.bin"
    outside.write_bytes((path.parent / "weights.bin").read_bytes())
    (path.parent / "link.bin").symlink_to(outside)
    set_external(path, location=location)
    opened = []
    real_open = open
    monkeypatch.setattr("frontends.onnx.external.open", lambda p, *a, **k: opened.append(p) or real_open(p, *a, **k),
                        raising=False)
    expect_clean_error(path, match)
    assert all(Path(p).resolve().is_relative_to(path.parent.resolve()) for p in opened)


def test_external_data_ranges_are_checked(tmp_path):
    path = external_model(tmp_path)
    set_external(path, offset="999999")
    expect_clean_error(path, "the data file is truncated")
    (tmp_path / "again").mkdir()
    path = external_model(tmp_path / "again")
    set_external(path, length="3")
    expect_clean_error(path, "does not match its dims")


# ---- memory ----------------------------------------------------------------------------------
def test_importing_a_resnet50_sized_model_holds_its_weights_about_once(tmp_path):
    """~101 MB of weights: the peak RSS growth during import stays under 2x the weight bytes (it is
    about 1.1x: wire.py reads each initializer straight into its own array)."""
    from tests.onnx_models.memory import measure, wide_mlp

    path = tmp_path / "wide.onnx"
    weight_bytes = wide_mlp(path)
    result = measure(path, [(1, 1024)])
    print(f"\nimport of {weight_bytes / 1e6:.0f} MB of weights: peak +{result['peak_delta_bytes'] / 1e6:.0f} MB "
          f"({result['ratio']}x, {result['method']}), {result['seconds']} s")
    assert result["weight_bytes"] == weight_bytes
    assert result["peak_delta_bytes"] <= 2 * weight_bytes


def test_weights_kept_in_constant_nodes_are_read_from_the_file(tmp_path):
    """Paddle exports keep weights in Constant nodes; wire.py reads their bytes apart too."""
    model = small_cnn()
    constants = [helper.make_node("Constant", [], [t.name], name=f"const_{t.name}", value=t)
                 for t in model.graph.initializer]
    nodes = constants + list(model.graph.node)
    model.graph.ClearField("initializer")
    model.graph.ClearField("node")
    model.graph.node.extend(nodes)
    path = saved(tmp_path, model)
    graph = import_onnx(path)
    assert graph.weights["w"].data.shape == (4, 3, 3, 3)
    x = randn(1, 3, 8, 8)
    assert_same(interpret(graph, torch.from_numpy(x)), ort_run(path, {"x": x}), "constant-node weights")

"""Command-line edge cases: each is one clear message and exit code 2, or the obvious default."""
from __future__ import annotations

import math
import re
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from compiler.cli import main
from compiler.errors import FrontendError
from frontends.onnx import import_onnx
from tests.onnx_models import small_cnn

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "examples" / "demo_model.py") + ":build"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_the_target_defaults_to_the_outputs_suffix(tmp_path, capsys):
    code, err = run(capsys, "compile", DEMO, "-o", tmp_path / "x.onnx")
    assert code == 0, err
    onnx.checker.check_model(str(tmp_path / "x.onnx"))


def test_an_output_whose_suffix_names_no_target_asks_for_one(tmp_path, capsys):
    code, err = run(capsys, "compile", DEMO, "-o", tmp_path / "x.bin")
    assert code == 2 and "no target given for output" in err and "--target" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["--target", ","], "--target ',' names no target"),
    (["--target", " , ,"], "names no target"),
    (["--input-shape", "99999999999999999999x3x4x4"], "bad input shape"),
    (["--input-shape", "1x" * 20 + "1"], "bad input shape"),
    (["--input-shape", "１x3"], "bad input shape"),
    (["--input-shape", "65536x65536x65536x3"], "bad input shape"),
])
def test_bad_arguments_are_one_clear_error(capsys, argv, message):
    code, err = run(capsys, "compile", DEMO, *argv)
    assert code == 2 and message in err and "Traceback" not in err


FACTORIES = """
class Stop(BaseException):
    pass

def base_exception():
    raise Stop("stop")

def exits_quietly():
    raise SystemExit(0)
"""


@pytest.mark.parametrize("factory, message", [
    ("base_exception", "raised Stop: stop"),
    ("exits_quietly", "raised SystemExit: 0"),
])
def test_a_factory_that_raises_any_exception_is_exit_2(tmp_path, capsys, factory, message):
    (tmp_path / "factories.py").write_text(FACTORIES)
    code, err = run(capsys, "compile", f"{tmp_path / 'factories.py'}:{factory}", "--input-shape", "1x3")
    assert code == 2 and message in err


def test_a_module_that_exits_on_import_is_exit_2(tmp_path, capsys):
    (tmp_path / "quits.py").write_text("raise SystemExit(0)\n")
    code, err = run(capsys, "compile", f"{tmp_path / 'quits.py'}:build")
    assert code == 2 and "SystemExit" in err


def test_a_model_path_too_long_for_the_file_system(capsys):
    code, err = run(capsys, "compile", "x" * 5000 + ".onnx")
    assert code == 2 and "model file not found" in err


# ---- ONNX files ------------------------------------------------------------------------------------
def external_model(tmp_path: Path, **entries: str) -> Path:
    path = tmp_path / "cnn.onnx"
    onnx.save(small_cnn(), path, save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin",
              size_threshold=0)
    model = onnx.load(path, load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key in entries:
                entry.value = entries[entry.key]
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("offset", [" 4", "\u0661", "1_0", "+0", "0x10", "9" * 40])
def test_external_data_offsets_are_plain_ascii_digits(tmp_path, offset):
    with pytest.raises(FrontendError, match="is not a non-negative integer"):
        import_onnx(external_model(tmp_path, offset=offset))


def test_an_over_long_external_data_location_is_a_clear_error(tmp_path):
    with pytest.raises(FrontendError) as info:
        import_onnx(external_model(tmp_path, location="x" * 5000))
    text = info.value.render()
    assert "cannot be resolved: File name too long" in text and "report an nnforge bug" not in text


def test_a_node_output_may_not_redefine_an_initializer(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("w", TensorProto.FLOAT, [2])
    w = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["w"])], "g", [x], [y], [w]),
                              opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(FrontendError, match="tensor 'w' is defined twice \\(it is also an initializer\\)"):
        import_onnx(model)


def one_node(node, inits):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    tensors = [helper.make_tensor(name, kind, [len(v)], v) for name, (kind, v) in inits.items()]
    return helper.make_model(helper.make_graph([node], "g", [x], [y], tensors),
                             opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("node, inits, message", [
    (helper.make_node("Resize", ["x", "", "scales"], ["y"]), {"scales": (TensorProto.FLOAT, [1, 1, math.inf, 2])},
     "needs finite positive scales"),
    (helper.make_node("Resize", ["x", "", "scales"], ["y"]), {"scales": (TensorProto.FLOAT, [1, 1, 1e30, 1])},
     "would need"),
    (helper.make_node("Resize", ["x", "", "scales"], ["y"]), {"scales": (TensorProto.FLOAT, [1, 1, 3e38, 1])},
     "overflow float32"),
    (helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=2), {"axes": (TensorProto.INT64, [1])},
     "attribute 'keepdims' must be 0 or 1, got 2"),
    (helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[1, 1], ceil_mode=-1), {},
     "attribute 'ceil_mode' must be 0 or 1, got -1"),
])
def test_onnx_attributes_and_scales_outside_the_spec_are_refused(node, inits, message):
    with pytest.raises(FrontendError, match=re.escape(message)):
        import_onnx(one_node(node, inits))

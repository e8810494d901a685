"""`.nnfir` files at the edges: special floats parse back, malformed text is one IRError, and the
weights file is never read from outside the IR file's folder."""
from __future__ import annotations

import math
import os

import pytest
import torch
from safetensors.torch import save_file

from compiler.cli import main
from compiler.errors import FrontendError, IRError
from compiler.ir import Graph, TensorType
from compiler.ir_parser import parse_graph
from compiler.printer import print_graph
from compiler.quant.annotation import QuantAnnotation
from frontends.ir_text import load_ir_file


def test_inf_and_nan_constants_and_attributes_parse_back():
    g = Graph("special")
    x = g.add_input("x", TensorType((3,), torch.float32))
    c = g.add_constant("c", torch.tensor([-math.inf, math.inf, math.nan]))
    y = g.create_node("add", [x, c], name="y").output
    z = g.create_node("clip", [y], {"min": -math.inf, "max": math.inf}, name="z").output
    z.annotate(QuantAnnotation(format="fp4-e2m1", scale="c", exponent_bias=-math.inf))
    g.outputs = [z]
    text = print_graph(g)
    again = parse_graph(text)
    assert print_graph(again) == text
    data = again.weights["c"].data
    assert data[0] == -math.inf and data[1] == math.inf and math.isnan(data[2])


BODY = "graph g(%x: f32[2]) {{\n{lines}\n  return {ret}\n}}\n"


def ir(lines: str, ret: str = "%y") -> str:
    return BODY.format(lines=lines, ret=ret)


@pytest.mark.parametrize("text, message", [
    (ir("  %x: f32[2] = relu(%x)", "%x"), "%x is defined twice"),
    (ir("  %y: f32[2] = relu(%x)\n  %y: f32[2] = neg(%x)"), "%y is defined twice"),
    (ir("  %c: f32[3] = constant [1.0, 2.0]\n  %y: f32[2] = relu(%x)"), "typed [3] (3 values) but lists 2"),
    (ir('  %c: f32[2] = constant ["a", 2.0]\n  %y: f32[2] = relu(%x)'), "must list plain numbers"),
    (ir("  %c: f32[2] = constant [[1.0], [2.0]]\n  %y: f32[2] = relu(%x)"), "must list plain numbers"),
    (ir("  %c: f32[] = constant [1.0]\n  %y: f32[2] = relu(%x)"), "lists 1"),
    (ir("  %c: i8[1] = constant [1000]\n  %y: f32[2] = relu(%x)"), "cannot hold (1000,) as torch.int8"),
    (ir("  %c: f32[2] = constant " + "[" * 3000 + "]" * 3000 + "\n  %y: f32[2] = relu(%x)"), "nests lists 3001 deep"),
    ("graph g(%x: f32[99999999999999999999]) {\n  return %x\n}\n", "is too large"),
    (ir("  %y: f32[2] = clip(%x) {min=" + "9" * 5000 + "}"), "cannot read IR text"),
    (ir('  %y: f32[1,1,4,4] = resize(%x) {mode="\\N{x}", size=[4,4]}'), "cannot read IR text"),
    (ir("  %y: f32[2] = relu(%x) @quant<format=(((>"), "cannot read IR text"),
    (ir("  %y: f32[2] = relu(%x) @quant<nope=1>"), "cannot read IR text"),
    (ir("  %y: f32[2] = nosuchop(%x)"), "unknown op 'nosuchop'"),
])
def test_malformed_ir_text_is_one_irerror(text, message):
    with pytest.raises(IRError) as info:
        parse_graph(text)
    assert message in info.value.render()


def ir4(lines: str) -> str:
    """A graph over a [1, 2, 2, 2] input, for the ops whose signatures the fuzzer broke."""
    return f"graph g(%x: f32[1,2,2,2]) {{\n{lines}\n  return %y\n}}\n"


W = "  %w: f32[2,2,1,1] = constant [1.0,0.0,0.0,1.0]\n"


@pytest.mark.parametrize("text, message", [
    (ir4(W + "  %y: f32[1,2,2,2] = conv(%x, %w, None) {dilation=[1,1], groups=1, padding=[0], stride=[1,1]}"),
     "must each have 2 entries"),
    (ir4("  %w: f32[2] = constant [1.0,1.0]\n  %y: f32[1,2,2,2] = conv(%x, %w, None) "
         "{dilation=[1,1], groups=1, padding=[0,0], stride=[1,1]}"), "expected a 4-d input and weight"),
    (ir4(W + "  %b: i8[2] = constant [1,1]\n  %y: f32[1,2,2,2] = conv(%x, %w, %b) "
             "{dilation=[1,1], groups=1, padding=[0,0], stride=[1,1]}"), "mix dtypes float32, int8"),
    (ir4("  %m: f64[2] = constant [0.0,0.0]\n  %v: f32[2] = constant [1.0,1.0]\n"
         "  %y: f32[1,2,2,2] = batch_norm(%x, %m, %v, None, None) {eps=1e-05}"), "mix dtypes float32, float64"),
    (ir4("  %y: f32[1,2,2,2] = layer_norm(%x, None, None) {eps=1e-05, normalized_shape=[3]}"),
     "is not the input's trailing dims"),
    (ir4("  %y: f32[1,2,2,2] = group_norm(%x, None, None) {eps=1e-05, num_groups=3}"), "do not divide the channels"),
    (ir4("  %y: bool[1,2,2,2] = equal(%x, %x, None)"), "takes 2..2 inputs"),
    (ir4("  %y: f32[1,2,1,1] = max_pool(%x) {ceil_mode=False, dilation=[1,1], kernel=[2,2], padding=[0], "
         "stride=[2,2]}"), "must each have 2 entries"),
    ('graph "\\N{x}"(%x: f32[2]) {\n  return %x\n}\n', "bad graph name"),
    (ir4("  %y: f32[1,2,2,2] = clip(%x) {max=None, min=None}"), "needs a min, a max, or both"),
    (ir4("  %y: f32[1,2,2,2] = clip(%x) {max=1e60, min=None}"), "max=1e+60 does not fit float32"),
    (ir4("  %y: f32[1,2,2,2] = leaky_relu(%x) {negative_slope=1e60}"), "does not fit float32"),
    (ir4('  %y: f32[1,2,2,4] = pad(%x) {mode="constant", pads=[1,1], value=-1e60}'), "value=-1e+60 does not fit"),
    (ir4("  %s: f64[] = constant 0.5\n  %y: f32[1,2,2,2] = fake_quant(%x, %s, None, None) "
         '{axis=None, block_size=0, format="int8"}'), "scale would widen"),
])
def test_node_signatures_torch_would_reject_are_irerrors(text, message):
    with pytest.raises(IRError) as info:
        parse_graph(text)
    assert message in info.value.render()


def write_ir(folder, name="r"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.nnfir"
    path.write_text("graph g(%x: f32[2]) {\n  %w: f32[2] = weight\n  %y: f32[2] = add(%x, %w)\n  return %y\n}\n")
    return path


def test_a_weights_symlink_leading_outside_the_folder_is_refused(tmp_path):
    path = write_ir(tmp_path / "model")
    save_file({"w": torch.ones(2)}, str(tmp_path / "outside.safetensors"))
    (tmp_path / "model" / "r.safetensors").symlink_to(tmp_path / "outside.safetensors")
    with pytest.raises(FrontendError, match="points outside the model's folder"):
        load_ir_file(path)


def test_a_weights_symlink_inside_the_folder_is_read(tmp_path):
    path = write_ir(tmp_path / "model")
    save_file({"w": torch.ones(2)}, str(tmp_path / "model" / "weights.safetensors"))
    (tmp_path / "model" / "r.safetensors").symlink_to("weights.safetensors")
    assert torch.equal(load_ir_file(path).weights["w"].data, torch.ones(2))


@pytest.mark.parametrize("content, message", [
    (b"graph g(\xff", "is not UTF-8 text"),
    (b"", "cannot parse IR text"),
])
def test_unreadable_ir_files_are_one_clear_error(tmp_path, capsys, content, message):
    (tmp_path / "bad.nnfir").write_bytes(content)
    code = main(["compile", str(tmp_path / "bad.nnfir")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_a_corrupt_weights_file_is_one_clear_error(tmp_path, capsys):
    path = write_ir(tmp_path)
    (tmp_path / "r.safetensors").write_bytes(os.urandom(64))
    assert main(["compile", str(path)]) == 2
    assert "cannot read weights" in capsys.readouterr().err

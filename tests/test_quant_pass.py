"""The quantize pass, the LLM-FP4 search, fold-preshifted-bias, sensitivity / mixed precision,
calibration data handling and the quantized graph through both backends."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from backends.onnx import OnnxBackend
from compiler import calibration, compile
from compiler.errors import PipelineError, UserInputError
from compiler.interpreter import interpret
from compiler.ir_parser import parse_graph
from compiler.pipeline import parse_pipeline
from compiler.printer import print_graph
from compiler.quant import QuantAnnotation
from passes.quantize import Quantize
from passes.quantize.search import weight_reconstruction
from passes.quantize.sensitivity import choose_wide, layer_sensitivity, plot_sensitivity


pytestmark = pytest.mark.usefixtures("single_thread")


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 4 * 4, 10)
        self.scale = nn.Parameter(torch.ones(10))  # a parameterized op with no quantized form

    def forward(self, x):
        x = torch.relu(self.c2(torch.relu(self.c1(x))))
        return self.fc(nn.functional.max_pool2d(x, 2).flatten(1)) * self.scale


class Block(nn.Module):
    """LayerNorm -> two linears sharing the input (attention-style), LN without affine -> linear."""

    def __init__(self):
        super().__init__()
        self.ln, self.q, self.k = nn.LayerNorm(16), nn.Linear(16, 8), nn.Linear(16, 8)
        self.ln2, self.out = nn.LayerNorm(8, elementwise_affine=False), nn.Linear(8, 4)
        with torch.no_grad():
            self.ln.weight.copy_(torch.linspace(0.05, 4.0, 16))  # channels of very different range

    def forward(self, x):
        h = self.ln(x)
        a = self.q(h) + self.k(h)
        return self.out(self.ln2(a)) + a.sum(-1, keepdim=True)


def _cnn():
    torch.manual_seed(0)
    return SmallCNN().eval(), torch.randn(4, 1, 8, 8), torch.randn(32, 1, 8, 8)


def _rel(a, b):
    return float(((a - b) ** 2).sum() / (b ** 2).sum())


def test_quantize_inserts_annotated_fake_quant_nodes_and_reports():
    model, x, calib = _cnn()
    result = compile(model, (x,), "quantize{weights=int8,activations=int8}", calibration_data=calib)
    g = result.graph
    fq = [n for n in g.nodes if n.op == "fake_quant"]
    assert len(fq) == 6
    weights = {n.output.annotation(QuantAnnotation) for n in fq if n.inputs[0].data is not None}
    assert {(a.role, a.granularity, a.axis, a.format) for a in weights} == {("weight", "channel", 0, "int8")}
    acts = [n.output.annotation(QuantAnnotation) for n in fq if n.inputs[0].data is None]
    assert all(a.role == "activation" and a.granularity == "tensor" for a in acts)
    assert all(a.scale in g.weights for a in weights)
    stats = result.report.passes[0].stats
    assert stats["weights.int8"] == 3 and stats["activations.int8"] == 3 and stats["layers"] == 3
    assert stats["calibration.batches"] == 8 and stats["calibration.source"] == "user data"
    assert stats["float.mul"] == 1 and "stays float" in stats["warning"] and "mul x1" in stats["warning"]
    assert _rel(interpret(g, x)[0], model(x).detach()) < 1e-3
    # printed IR parses back to the same text (annotations included)
    text = print_graph(g)
    assert print_graph(parse_graph(text, {k: v.data for k, v in g.weights.items()})) == text


@pytest.mark.parametrize("spec, check", [
    ("weights=int4,activations=none", lambda s: s["weights.int4"] == 3 and "activations.int8" not in s),
    ("weights=mxfp4,activations=fp8-e4m3", lambda s: s["avg_weight_bits"] == 4.25),
    ("weights=nvfp4,activations=none", lambda s: s["avg_weight_bits"] == 4.5),
    ("weights=int4,granularity=group,block-size=8", lambda s: s["weights.int4"] == 3),
    ("weights=fp4-e2m1,activations=fp4-e2m1,act-granularity=channel", lambda s: s["activations.fp4-e2m1"] == 3),
    ("overrides={fc=int8},weights=int4,skip=[c1]", lambda s: s["weights.int8"] == 1 and s["skipped"] == 1),
    ("overrides={c1=\"int8/none\"},weights=int4", lambda s: s["activations.int8"] == 2),
    ("act-clip=percentile,weight-clip=minmax", lambda s: s["layers"] == 3),
])
def test_quantize_options(spec, check):
    model, x, calib = _cnn()
    result = compile(model, (x,), f"quantize{{{spec}}}", calibration_data=calib, target="pytorch")
    assert check(result.report.passes[0].stats), result.report.passes[0].stats
    got = result.artifact.run(x)[0]
    assert torch.equal(got, interpret(result.graph, x)[0])  # PyTorch backend bit-exact
    assert _rel(got, model(x).detach()) < 0.1


def test_pipeline_text_round_trips():
    text = 'quantize{weights=int4,activations=none,search=fp-bias,overrides={fc=int8},skip=[stem]}'
    pipeline = parse_pipeline(text)
    assert str(pipeline.passes[0]) == text.replace("activations=none", "activations=none")
    assert parse_pipeline(str(pipeline.passes[0])).passes == pipeline.passes


@pytest.mark.parametrize("spec, message", [
    ("weights=int12", "integer widths are 2..8 bits, not 12"),
    ("weights=fp5", "allowed: int2..int8"),
    ("activations=mxfp4", "activations take: none, int2..int8"),
    ("overrides={fc=int1}", "integer widths are 2..8"),
    ("search=bias", "expects none | fp-format | fp-bias"),
    ("budget=3.0,weights=int4", "budget"),
])
def test_bad_options_name_the_allowed_values(spec, message):
    with pytest.raises(PipelineError) as info:
        parse_pipeline(f"quantize{{{spec}}}")
    assert message in str(info.value)


def test_wrong_calibration_shape_is_rejected_before_any_work():
    model, x, _ = _cnn()
    ran = []
    with pytest.raises(UserInputError) as info:
        compile(model, (x,), "quantize", calibration_data=torch.randn(10, 8, 8),
                on_pass=lambda i, p: ran.append(p))
    assert "has shape [10, 8, 8], but the graph input expects f32[4,1,8,8]" in str(info.value)
    assert ran == []
    with pytest.raises(UserInputError, match="k\\*4 rows"):
        compile(model, (x,), "quantize", calibration_data=np.zeros((6, 1, 8, 8), np.float32))


def test_calibration_data_forms(tmp_path: Path):
    model, x, calib = _cnn()
    g = compile(model, (x,)).graph
    assert len(calibration.batches(g, calib)) == 8
    assert len(calibration.batches(g, calib, limit=3)) == 3
    assert len(calibration.batches(g, list(calib.split(4)))) == 8
    assert len(calibration.batches(g, (b for b in calib.split(8)))) == 8
    np.savez(tmp_path / "c.npz", x=calib.numpy())
    assert len(calibration.batches(g, calibration.load_file(tmp_path / "c.npz"))) == 8
    np.save(tmp_path / "c.npy", calib.double().numpy())  # float64 is cast to the graph's float32
    assert calibration.batches(g, calibration.load_file(tmp_path / "c.npy"))[0][0].dtype == torch.float32
    with pytest.raises(UserInputError, match="is torch.int64"):
        calibration.batches(g, torch.zeros(4, 1, 8, 8, dtype=torch.int64))
    with pytest.raises(UserInputError, match=".npy or .npz"):
        calibration.load_file(tmp_path / "c.txt")


def test_search_lowers_the_layer_error_and_records_bias():
    model, x, calib = _cnn()
    plain = compile(model, (x,), "quantize{weights=fp4-e2m1,activations=fp4-e2m1}", calibration_data=calib)
    searched = compile(model, (x,), "quantize{weights=fp4-e2m1,activations=fp4-e2m1,search=fp-format,"
                                    "candidates=25,rounds=1}", calibration_data=calib)
    stats = searched.report.passes[0].stats
    assert stats["search.layers"] == 3
    assert stats["search.rel_error_after"] < stats["search.rel_error_before"]
    y = model(calib[:4]).detach()
    assert _rel(interpret(searched.graph, calib[:4])[0], y) < _rel(interpret(plain.graph, calib[:4])[0], y)
    acts = [n.output.annotation(QuantAnnotation) for n in searched.graph.nodes
            if n.op == "fake_quant" and n.inputs[0].data is None]
    assert all(a.exponent_bias is not None for a in acts)  # the real-valued bias that was chosen


def test_format_search_only_picks_formats_the_target_carries(tmp_path: Path):
    model, x, calib = _cnn()
    spec = "quantize{weights=fp4-e2m1,activations=fp4-e2m1,search=fp-format,candidates=25,rounds=1}"
    free = compile(model, (x,), spec, calibration_data=calib).report.passes[0].stats
    assert "search.excluded" not in free
    result = compile(model, (x,), spec, calibration_data=calib, target=OnnxBackend(opset=23),
                     output=tmp_path / "m.onnx")   # every pick exports: no fp4-e1m2 / e3m0 type in ONNX
    stats = result.report.passes[0].stats
    assert [k for k in stats if k.startswith("search.weights.")] == ["search.weights.fp4-e2m1"]
    assert "fp4-e1m2 (target onnx{opset=23}: no ONNX tensor type holds fp4-e1m2)" in stats["search.excluded"]
    formats = {n.attrs["format"] for n in result.graph.nodes if n.op == "fake_quant"}
    assert formats == {"fp4-e2m1"}


def test_weight_reconstruction_search_beats_fixed_e2m1_and_int4():
    w = torch.randn(32, 64, generator=torch.Generator().manual_seed(3)) * torch.rand(32, 1) ** 2
    from compiler.quant import fake_quant, parse_format
    int4 = parse_format("int4")
    s, _ = int4.params(w.amin(1), w.amax(1))
    err_int4 = float(((fake_quant(int4, w, s, axis=0) - w) ** 2).sum() / (w ** 2).sum())
    _, _, err_fixed = weight_reconstruction(w, parse_format("fp4-e2m1"), 0, candidates=2)
    fmt, _, err_search = weight_reconstruction(w, parse_format("fp4-e2m1"), 0, search_format=True)
    assert err_search < err_int4 and err_search <= err_fixed


def test_preshifted_bias_folds_exactly_into_layer_norm_and_next_weights():
    torch.manual_seed(0)
    model, x = Block().eval(), torch.randn(3, 5, 16)
    first = compile(model, (x,), "quantize{weights=none,activations=fp4-e2m1,preshift=true}",
                    calibration_data=torch.randn(30, 5, 16))
    assert first.report.passes[0].stats["activations.fp4-e2m1.preshift"] == 2
    g = first.graph
    before = interpret(g, x)[0]
    per_channel = [n for n in g.nodes if n.op == "fake_quant"]
    assert all(n.attrs["axis"] == 2 for n in per_channel)
    folded = compile(g, (x,), "fold-preshifted-bias", check_equivalence=True)
    stats = folded.report.passes[0].stats
    assert stats["folded"] == 2 and stats["absorbed.layer_norm"] == 1 and stats["inserted.mul"] == 1
    assert folded.report.passes[0].max_abs_diff == 0.0
    assert torch.equal(interpret(folded.graph, x)[0], before)
    quants = [n for n in folded.graph.nodes if n.op == "fake_quant"]
    assert all(n.attrs["axis"] is None and n.output.annotation(QuantAnnotation).granularity == "tensor"
               for n in quants)
    # then the weights; activations already quantized are left alone
    final = compile(folded.graph, (x,), "quantize{weights=fp4-e2m1,activations=int8}", target=OnnxBackend(opset=23))
    assert final.report.passes[0].stats["weights.fp4-e2m1"] == 3
    assert "activations.int8" not in final.report.passes[0].stats
    assert final.artifact.info["check"] == "passed (full_check)"


def test_fold_leaves_quantized_weights_alone_with_a_reason():
    torch.manual_seed(0)
    model, x = Block().eval(), torch.randn(3, 5, 16)
    g = compile(model, (x,), "quantize{weights=int8,activations=fp4-e2m1,preshift=true}",
                calibration_data=torch.randn(30, 5, 16)).graph
    stats = compile(g, (x,), "fold-preshifted-bias").report.passes[0].stats
    assert stats["folded"] == 0 and stats["skipped.weights-quantized"] == 2


def test_sensitivity_mixed_precision_and_plot(tmp_path: Path):
    model, x, calib = _cnn()
    g = compile(model, (x,)).graph
    batches = calibration.batches(g, calib, 4)
    rows = layer_sensitivity(Quantize(weights="int2", activations="none"), g, ["c1", "c2", "fc"], batches)
    assert [r["layer"] for r in rows] == ["c1", "c2", "fc"] and all(r["error"] > 0 for r in rows)
    assert choose_wide(rows, 2, 8, 8.0) == {"c1", "c2", "fc"} and choose_wide(rows, 2, 8, 2.0) == set()
    result = compile(model, (x,), "quantize{weights=int2,activations=none,budget=4.0,wide=int8}",
                     calibration_data=calib)
    stats = result.report.passes[0].stats
    assert stats["avg_weight_bits"] <= 4.0 and stats["mixed.wide_layers"] >= 1
    assert {f"sensitivity.{n}" for n in ("c1", "c2", "fc")} <= set(stats)
    pytest.importorskip("matplotlib")
    path = plot_sensitivity(rows, tmp_path / "sensitivity.png", wide={"fc"})
    assert path.stat().st_size > 1000


def test_quantized_cnn_exports_to_onnx_within_one_step():
    model, x, calib = _cnn()
    for spec, opset in [("weights=int8,activations=int8", 17), ("weights=int4,activations=uint8", 21),
                        ("weights=fp8-e4m3,activations=fp8-e4m3", 21)]:  # onnxruntime mis-fuses FP8 before 21
        result = compile(model, (x,), f"quantize{{{spec}}}", target=OnnxBackend(opset=opset),
                         calibration_data=calib)
        nodes = [n.op_type for n in result.artifact.obj.graph.node]
        assert "DequantizeLinear" in nodes and "QuantizeLinear" in nodes
        expected, got = interpret(result.graph, x)[0], result.artifact.run(x)[0]
        step = float(result.graph.weights["flatten.act.scale"].data) * float(result.graph.weights["fc.weight"]
                                                                               .data.abs().sum(1).max())
        assert float((got - expected).abs().max()) <= step + 1e-5


def test_formats_onnx_cannot_carry_fail_the_export_clearly():
    model, x, calib = _cnn()
    from compiler.errors import BackendError
    with pytest.raises(BackendError, match="fp4-e3m0 has no ONNX tensor type"):
        compile(model, (x,), "quantize{weights=fp4-e3m0,activations=none}", target=OnnxBackend(opset=23))

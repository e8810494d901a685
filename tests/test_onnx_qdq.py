"""ONNX export of quantized graphs that onnxruntime runs on integer kernels.

The QDQ form (`onnx{quant=qdq}`, the default) must be fused by onnxruntime's optimizer into
QLinearConv / QGemm / QLinearAdd, and its outputs must equal the integer interpreter's: identical,
or one code on at most 0.1% of the elements of every quantized tensor (end to end on these small
networks; layer by layer on any, see tests/integer_agreement.py). `quant=exact` is the
integer form op by op, bit-exact. A fake-quant graph exports through its integer form; formats
without one (FP4) export as plain QDQ and say so.
"""
from __future__ import annotations

import collections

import onnx
import onnxruntime as ort
import pytest
import torch

from compiler import compile
from compiler.backend import get_backend
from compiler.interpreter import interpret
from tests.integer_agreement import end_to_end_mismatches, per_layer_mismatches
from tests.test_integerize import Chain, integerized, randomize_bn
from tests.test_quant_accuracy import BATCH, accuracy, digits_data, train_digits_cnn

W8A8 = "fold-bn,quantize{weights=int8,activations=uint8,residuals=true}"


def optimized_ops(model_bytes: bytes, tmp_path) -> collections.Counter:
    """The op types onnxruntime's optimizer leaves in the graph it runs."""
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    return collections.Counter(n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node)


@pytest.mark.parametrize("build, convs, adds", [("resnet", 20, 8), ("mobilenetv2", 52, 11)])
def test_zoo_cnns_run_on_fused_integer_kernels(build, convs, adds, tmp_path):
    from tests.zoo.mobilenetv2 import mobilenetv2
    from tests.zoo.resnet import resnet18
    model = randomize_bn(resnet18(num_classes=10, width=8) if build == "resnet"
                         else mobilenetv2(num_classes=10, width_mult=0.25))
    x = torch.rand(2, 3, 32, 32)
    result = compile(model, (x,), W8A8 + ",integerize", target="onnx", calibration_data=x)
    assert result.artifact.info["quant"] == "qdq"
    ops = optimized_ops(result.artifact.obj.SerializeToString(), tmp_path)
    assert ops["QLinearConv"] == convs and ops["QLinearAdd"] == adds and ops["QGemm"] == 1
    assert not {"Conv", "FusedConv", "Add"} & set(ops)
    worst, fraction = end_to_end_mismatches(result.graph, x)
    assert worst <= 1 and fraction <= 0.001
    worst, fraction, layers = per_layer_mismatches(result.graph, x)
    assert layers == convs + adds and worst <= 1 and fraction <= 0.001
    assert end_to_end_mismatches(result.graph, x, quant="exact") == (0, 0.0)


def test_digits_cnn_in_onnxruntime_equals_the_integer_interpreter(single_thread, tmp_path):
    model = train_digits_cnn()
    xtr, _, xte, yte = digits_data()
    result = compile(model, (xte[:BATCH],), W8A8 + ",integerize", target="onnx",
                     calibration_data=xtr[:BATCH * 4])
    ops = optimized_ops(result.artifact.obj.SerializeToString(), tmp_path)
    assert ops["QLinearConv"] == 2 and ops["QGemm"] == 2
    acc_ort = accuracy(lambda b: result.artifact.run(b)[0], xte, yte)
    acc_int = accuracy(lambda b: interpret(result.graph, b)[0], xte, yte)
    worst, fraction = end_to_end_mismatches(result.graph, xte[:BATCH])
    print(f"\ndigits W8A8: integer interpreter {acc_int:.2f}%, onnxruntime {acc_ort:.2f}%, "
          f"codes differing {fraction:.4%} (max {worst})")
    assert acc_ort == acc_int and worst <= 1 and fraction <= 0.001


def test_int8_activations_run_on_fused_kernels_as_shifted_uint8(tmp_path):
    """onnxruntime's x86 kernels fuse u8 activations with s8 weights: int8 codes travel as uint8
    with the zero point moved by 128, which is exact."""
    x = torch.randn(4, 3, 8, 8)
    result = compile(Chain().eval(), (x,), "quantize{activations=int8,residuals=true},integerize", target="onnx",
                     calibration_data=x)
    ops = optimized_ops(result.artifact.obj.SerializeToString(), tmp_path)
    assert ops["QLinearConv"] == 2 and ops["QGemm"] == 1 and "Conv" not in ops
    assert end_to_end_mismatches(result.graph, x) == (0, 0.0)


def test_fake_quant_graph_exports_through_its_integer_form():
    x = torch.randn(4, 3, 8, 8)
    fq = compile(Chain().eval(), (x,), "quantize{activations=uint8,residuals=true}", calibration_data=x).graph
    qdq = get_backend("onnx")().lower(fq, None)
    ints = integerized(fq)  # a copy: compile() rewrites a Graph in place
    assert qdq.info["quant"] == "qdq"
    for got, want in zip(qdq.run(x), interpret(ints, x)):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    plain = get_backend("onnx")(quant="plain").lower(fq, None)
    assert "ConvInteger" not in {n.op_type for n in plain.obj.graph.node}


def test_formats_without_an_integer_form_export_plain_and_say_why():
    x = torch.randn(4, 3, 8, 8)
    fq = compile(Chain().eval(), (x,), "quantize{weights=fp4-e2m1}", calibration_data=x).graph
    artifact = get_backend("onnx")().lower(fq, None)
    assert artifact.info["quant"].startswith("plain (no integer form: layer 'a' is quantized to fp4-e2m1")
    assert artifact.info["opset"] == 23  # opset=auto: the lowest carrying FLOAT4E2M1
    with pytest.raises(Exception, match="quant=exact needs an integer form"):
        get_backend("onnx")(quant="exact").lower(fq, None)

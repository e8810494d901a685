"""Pre-quantized ONNX models, made the way users make them: onnxruntime.quantization applied to a
small float CNN (conv -> relu -> strided conv -> relu -> flatten -> matmul + bias).

    qdq         quantize_static, QDQ format, per-channel int8 weights, uint8 activations
    qoperator   quantize_static, QOperator format: QLinearConv / QLinearMatMul
    dynamic     quantize_dynamic: DynamicQuantizeLinear + ConvInteger / MatMulInteger + Cast + Mul
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from tests.onnx_models import make_model, randn, value_info

SHAPE = (1, 3, 8, 8)
KINDS = ("qdq", "qoperator", "dynamic")


def float_cnn() -> onnx.ModelProto:
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("Flatten", ["r2"], ["flat"], name="flatten"),
             helper.make_node("MatMul", ["flat", "w3"], ["mm"], name="fc"),
             helper.make_node("Add", ["mm", "b3"], ["y"], name="fc_bias")]
    inits = {"w1": randn(8, 3, 3, 3, scale=0.3), "b1": randn(8, scale=0.1), "w2": randn(8, 8, 3, 3, scale=0.2),
             "b2": randn(8, scale=0.1), "w3": randn(8 * 4 * 4, 10, scale=0.1), "b3": randn(10, scale=0.1)}
    return make_model(nodes, [value_info("x", TensorProto.FLOAT, list(SHAPE))],
                      [value_info("y", TensorProto.FLOAT, [1, 10])], inits, 13, "cnn")


def batches(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(count)]


def quantized(kind: str, folder: Path) -> Path:
    """The float CNN quantized by onnxruntime.quantization as `kind`; returns the file."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter({"x": b} for b in batches(8))

        def get_next(self):
            return next(self.items, None)

    source, out = folder / "float.onnx", folder / f"{kind}.onnx"
    onnx.save(float_cnn(), source)
    if kind == "qdq":
        quantize_static(str(source), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    elif kind == "qoperator":
        quantize_static(str(source), str(out), Reader(), quant_format=QuantFormat.QOperator,
                        op_types_to_quantize=["Conv", "MatMul"])
    else:
        quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=["Conv", "MatMul"])
    return out

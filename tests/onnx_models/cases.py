"""The ONNX op catalogue: one-node models per mapped ONNX op (several per op where attributes
or opsets change the semantics). test_frontend_onnx.py checks that every entry of the mapping
table appears here and that each imports to an IR computing what onnxruntime computes."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tests.onnx_models import Init, randn, single_op

I64, I32 = np.int64, np.int32


def ints(*shape: int, low: int = -5, high: int = 6, dtype=I64) -> np.ndarray:
    return np.random.default_rng(sum(shape) + abs(low)).integers(low, high, shape).astype(dtype)


def positive(*shape: int) -> np.ndarray:
    return np.abs(randn(*shape)) + 0.1


def i64(*values: int) -> Init:
    return Init(np.array(values, dtype=I64))


def scalar(value, dtype=np.float32) -> Init:
    return Init(np.array(value, dtype=dtype))


@dataclass
class Case:
    op: str
    inputs: tuple
    attrs: dict = field(default_factory=dict)
    label: str = ""
    opset: int = 17
    outputs: int = 1

    @property
    def id(self) -> str:
        return f"{self.op}-{self.label}" if self.label else self.op

    def build(self):
        return single_op(self.op, self.inputs, self.attrs, self.opset, self.outputs)


X4 = randn(2, 3, 6, 6)
UNARY = ["Relu", "Sigmoid", "Tanh", "Exp", "Neg", "Abs", "Erf", "HardSwish", "Floor", "Ceil", "Round"]

CASES: list[Case] = [
    # ---- elementwise
    *[Case(op, (randn(2, 3, 4, scale=3.0),)) for op in UNARY],
    *[Case(op, (positive(2, 3, 4),)) for op in ("Log", "Sqrt", "Reciprocal")],
    Case("Not", (randn(3, 4) > 0,)),
    Case("Add", (randn(2, 3, 4), Init(randn(3, 1))), label="broadcast"),
    Case("Sub", (ints(2, 3), ints(3)), label="int"),
    Case("Mul", (randn(2, 3), scalar(2.5)), label="scalar"),
    Case("Div", (randn(2, 3), positive(2, 3)), label="float"),
    Case("Div", (ints(4, 5, low=-20, high=20), Init(np.array([3, -3, 4, -7, 2], dtype=I64))), label="int_truncates"),
    Case("Pow", (positive(2, 3), randn(3)), label="float"),
    Case("Pow", (randn(2, 3), Init(np.array(2, dtype=I64))), label="int_exponent"),
    *[Case(op, (ints(3, 4, low=0, high=3), ints(4, low=0, high=3)), label="int")
      for op in ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual")],
    Case("Less", (randn(3, 4), randn(3, 1)), label="float"),
    *[Case(op, (randn(3, 4) > 0, randn(4) > 0)) for op in ("And", "Or", "Xor")],
    Case("Where", (randn(3, 4) > 0, randn(3, 4), Init(randn(4)))),
    Case("Identity", (randn(2, 3),)),
    Case("Dropout", (randn(2, 3),), opset=13, outputs=2, label="with_mask"),
    Case("Cast", (randn(2, 3, scale=5.0),), {"to": 6}, label="float_to_int32"),
    Case("Cast", (ints(2, 3),), {"to": 1}, label="int_to_float"),
    Case("Cast", (np.array([0.0, 1.5, -2.0], dtype=np.float32),), {"to": 9}, label="to_bool"),
    Case("Cast", (randn(2, 3),), {"to": 10}, label="to_half"),
    Case("CastLike", (ints(2, 3), Init(np.zeros(1, dtype=np.float32))), opset=15),
    Case("LeakyRelu", (randn(2, 3),), {"alpha": 0.2}),
    Case("HardSigmoid", (randn(2, 3, scale=4.0),), label="paddle_default"),
    Case("HardSigmoid", (randn(2, 3, scale=4.0),), {"alpha": float(np.float32(1 / 6)), "beta": 0.5}, label="torch"),
    Case("Gelu", (randn(2, 3, scale=3.0),), opset=20, label="exact"),
    Case("Gelu", (randn(2, 3, scale=3.0),), {"approximate": "tanh"}, opset=20, label="tanh"),
    Case("PRelu", (X4, Init(randn(3, 1, 1))), label="per_channel"),
    Case("PRelu", (X4, Init(randn(1))), label="shared"),
    Case("PRelu", (X4, Init(randn(6))), label="last_dim"),
    Case("PRelu", (X4, randn(3, 1, 1)), label="dynamic_slope"),
    Case("Clip", (randn(2, 3, scale=4.0), scalar(0.0), scalar(6.0)), opset=11, label="relu6"),
    Case("Clip", (randn(2, 3), None, scalar(0.5)), opset=13, label="max_only"),
    Case("Clip", (ints(2, 5), Init(np.array(-2, dtype=I64)), Init(np.array(3, dtype=I64))), opset=13, label="int"),
    Case("Clip", (randn(2, 3), np.array(-0.5, dtype=np.float32)), opset=13, label="dynamic_min"),
    Case("Sum", (randn(2, 3), randn(3), Init(randn(2, 1)))),
    Case("Mean", (randn(2, 3), randn(2, 3))),
    Case("Max", (randn(2, 3), randn(3))),
    Case("Min", (randn(2, 3), randn(2, 3), Init(randn(1)))),
    Case("Softmax", (X4,), {"axis": 1}, opset=11, label="coerced_2d"),
    Case("Softmax", (X4,), {"axis": 1}, opset=13, label="per_axis"),
    Case("LogSoftmax", (randn(2, 3, 4),), opset=11, label="default_axis_11"),
    Case("LogSoftmax", (randn(2, 3, 4),), opset=13, label="default_axis_13"),
    # ---- shape
    Case("Reshape", (X4, i64(0, -1, 6)), label="copy_and_infer"),
    Case("Reshape", (randn(2, 0, 3), i64(0, 3)), {"allowzero": 1}, opset=14, label="allowzero"),
    Case("Flatten", (X4,), {"axis": 2}),
    Case("Flatten", (X4,), {"axis": -1}, label="negative"),
    Case("Flatten", (X4,), {"axis": 0}, label="axis0"),
    Case("Squeeze", (randn(2, 1, 3, 1),), {"axes": [1]}, opset=11, label="attr"),
    Case("Squeeze", (randn(2, 1, 3, 1), i64(-1)), opset=13, label="input"),
    Case("Squeeze", (randn(2, 1, 3, 1),), opset=13, label="all"),
    Case("Unsqueeze", (randn(2, 3),), {"axes": [0, 3]}, opset=11, label="attr"),
    Case("Unsqueeze", (randn(2, 3), i64(-1, 1)), opset=13, label="input"),
    Case("Transpose", (X4,), {"perm": [0, 2, 3, 1]}),
    Case("Transpose", (randn(2, 3, 4),), label="reversed"),
    Case("Concat", (randn(2, 3), Init(randn(2, 2)), randn(2, 1)), {"axis": -1}),
    Case("Split", (randn(2, 6),), {"axis": 1, "split": [1, 2, 3]}, opset=11, outputs=3, label="attr"),
    Case("Split", (randn(2, 6), i64(4, 2)), {"axis": 1}, opset=13, outputs=2, label="input"),
    Case("Split", (randn(7, 2),), {"num_outputs": 3}, opset=18, outputs=3, label="num_outputs_uneven"),
    Case("Split", (randn(6, 2),), opset=13, outputs=3, label="equal"),
    Case("Slice", (randn(5, 9), i64(1, 1), i64(4, 100), i64(0, 1), i64(1, 3)), label="steps"),
    Case("Slice", (randn(5, 9), i64(-1), i64(-100), i64(-1), i64(-2)), label="negative_step"),
    Case("Slice", (randn(5, 9), i64(-3), i64(2**62)), label="negative_start_max_end"),
    Case("Pad", (X4, i64(0, 0, 1, 2, 0, 0, 2, 1), scalar(1.5)), label="constant"),
    Case("Pad", (X4, i64(0, 0, 1, -1, 0, 0, -2, 1)), label="negative_crop"),
    Case("Pad", (X4, i64(0, 0, 2, 1, 0, 0, 1, 2)), {"mode": "reflect"}, label="reflect"),
    Case("Pad", (randn(2, 3, 5), i64(0, 0, 3, 0, 0, 1)), {"mode": "edge"}, label="edge"),
    Case("Pad", (X4, i64(0, 0, 2, 1, 0, 0, 1, 2)), {"mode": "wrap"}, opset=19, label="wrap"),
    Case("Pad", (X4, i64(1, 2), None, i64(-1)), opset=18, label="axes"),
    Case("Pad", (ints(2, 3), i64(1, 0, 0, 2), Init(np.array(7, dtype=I64))), label="int"),
    Case("Expand", (randn(3, 1), i64(2, 1, 4)), label="bidirectional"),
    Case("Tile", (randn(2, 3), i64(2, 3))),
    Case("Gather", (randn(4, 5, 6), i64(3, 0, -1)), {"axis": 1}, label="static_vector"),
    Case("Gather", (randn(4, 5), Init(np.array(-2, dtype=I64))), {"axis": 1}, label="static_scalar"),
    Case("Gather", (Init(randn(10, 4)), ints(2, 3, low=0, high=10)), label="embedding"),
    Case("Gather", (randn(4, 5), ints(2, 2, low=0, high=5, dtype=I32)), {"axis": 1}, label="dynamic"),
    Case("DepthToSpace", (randn(1, 8, 2, 3),), {"blocksize": 2}, label="dcr"),
    Case("DepthToSpace", (randn(1, 8, 2, 3),), {"blocksize": 2, "mode": "CRD"}, label="crd"),
    Case("SpaceToDepth", (randn(1, 2, 4, 6),), {"blocksize": 2}),
    # ---- nn
    Case("Conv", (X4, Init(randn(4, 3, 3, 3)), Init(randn(4))), {"pads": [1, 1, 1, 1]}, label="padded"),
    Case("Conv", (randn(1, 4, 9, 9), Init(randn(8, 2, 3, 3))), {"group": 2, "dilations": [2, 2], "strides": [2, 1]},
         label="grouped_dilated"),
    Case("Conv", (randn(1, 3, 9, 8), Init(randn(4, 3, 3, 3))), {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
         label="same_upper"),
    Case("Conv", (randn(1, 3, 9, 8), Init(randn(4, 3, 4, 4))), {"auto_pad": "SAME_LOWER"}, label="same_lower"),
    Case("Conv", (X4, Init(randn(4, 3, 3, 3))), {"auto_pad": "VALID"}, label="valid"),
    Case("Conv", (X4, Init(randn(4, 3, 3, 3))), {"pads": [0, 1, 2, 1]}, label="asymmetric"),
    Case("Conv", (randn(2, 3, 10), Init(randn(5, 3, 3)), Init(randn(5))), {"pads": [1, 1]}, label="1d"),
    Case("Conv", (randn(1, 2, 5, 6, 6), Init(randn(3, 2, 3, 3, 3))), {"pads": [1] * 6}, label="3d"),
    Case("ConvTranspose", (randn(1, 4, 5, 5), Init(randn(4, 3, 3, 3)), Init(randn(3))),
         {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}, label="output_padding"),
    Case("ConvTranspose", (randn(1, 4, 5, 5), Init(randn(4, 2, 3, 3))),
         {"strides": [2, 2], "pads": [0, 1, 2, 1], "group": 2}, label="asymmetric_grouped"),
    Case("ConvTranspose", (randn(1, 4, 5, 5), Init(randn(4, 3, 3, 3))),
         {"strides": [2, 2], "output_shape": [10, 10]}, label="output_shape"),
    Case("ConvTranspose", (randn(1, 4, 5, 5), Init(randn(4, 3, 4, 4))),
         {"strides": [2, 2], "auto_pad": "SAME_UPPER"}, label="same_upper"),
    Case("ConvTranspose", (randn(1, 4, 7), Init(randn(4, 2, 3))), {"strides": [3], "dilations": [2]}, label="1d"),
    Case("Gemm", (randn(3, 8), Init(randn(5, 8)), Init(randn(5))), {"transB": 1}, label="linear"),
    Case("Gemm", (randn(8, 3), Init(randn(8, 5)), Init(randn(3, 5))), {"transA": 1, "alpha": 0.5, "beta": 2.0},
         label="trans_a_alpha_beta"),
    Case("Gemm", (randn(3, 8), Init(randn(8, 5)), scalar(0.25)), label="scalar_c"),
    Case("Gemm", (randn(3, 8), randn(5, 8), randn(5)), {"transB": 1, "alpha": 2.0}, label="dynamic_b"),
    Case("MatMul", (randn(2, 4, 8), Init(randn(8, 5))), label="weight"),
    Case("MatMul", (randn(2, 1, 4, 5), randn(3, 5, 2)), label="batched"),
    Case("BatchNormalization", (X4, Init(randn(3)), Init(randn(3)), Init(randn(3)), Init(positive(3))),
         {"epsilon": 1e-3}, opset=15),
    Case("BatchNormalization", (randn(4, 3), Init(randn(3)), Init(randn(3)), Init(randn(3)), Init(positive(3))),
         opset=11, label="2d_opset11"),
    Case("InstanceNormalization", (X4, Init(randn(3)), Init(randn(3))), {"epsilon": 1e-4}),
    Case("LayerNormalization", (randn(2, 5, 8), Init(randn(8)), Init(randn(8)))),
    Case("LayerNormalization", (randn(2, 5, 8), Init(randn(5, 8))), {"axis": -2, "epsilon": 1e-3}, label="two_dims"),
    Case("LayerNormalization", (randn(2, 5, 8), Init(randn(1))), label="broadcast_scale"),
    Case("GroupNormalization", (randn(2, 6, 4, 4), Init(randn(3)), Init(randn(3))), {"num_groups": 3}, opset=18,
         label="per_group_18"),
    Case("GroupNormalization", (randn(2, 6, 4, 4), Init(randn(6)), Init(randn(6))), {"num_groups": 2}, opset=21,
         label="per_channel_21"),
    # ---- pooling
    Case("MaxPool", (X4,), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, label="padded"),
    Case("MaxPool", (randn(1, 2, 9, 9),), {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                           "ceil_mode": 1}, label="ceil"),
    Case("MaxPool", (X4,), {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 1, 1]}, label="asymmetric"),
    Case("MaxPool", (randn(1, 2, 7, 7),), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
         label="same_upper"),
    Case("MaxPool", (randn(1, 2, 11, 11),), {"kernel_shape": [3, 3], "dilations": [2, 2]}, label="dilated"),
    Case("MaxPool", (randn(2, 3, 10),), {"kernel_shape": [3], "strides": [2]}, label="1d"),
    Case("AveragePool", (X4,), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
         label="exclude_pad"),
    Case("AveragePool", (X4,), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                "count_include_pad": 1}, label="include_pad"),
    Case("AveragePool", (randn(1, 2, 8, 8),), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                               "ceil_mode": 1, "count_include_pad": 1}, label="ceil_include_pad"),
    Case("AveragePool", (X4,), {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 1, 1],
                                "count_include_pad": 1}, label="asymmetric_include_pad"),
    Case("GlobalAveragePool", (X4,)),
    Case("GlobalMaxPool", (randn(2, 3, 5),)),
    # ---- resize
    Case("Resize", (X4, None, Init(np.array([1, 1, 2, 2], dtype=np.float32))),
         {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
         opset=13, label="nearest_2x"),
    Case("Resize", (X4, None, Init(np.array([1, 1, 2, 2], dtype=np.float32))), {"mode": "nearest"}, opset=13,
         label="nearest_default_modes"),
    Case("Resize", (X4, None, None, i64(2, 3, 9, 4)),
         {"mode": "nearest", "nearest_mode": "round_prefer_ceil"}, opset=13, label="nearest_sizes_exact"),
    Case("Resize", (randn(1, 2, 5, 7), None, None, i64(1, 2, 8, 3)),
         {"mode": "nearest", "coordinate_transformation_mode": "align_corners", "nearest_mode": "round_prefer_floor"},
         opset=13, label="nearest_align_corners"),
    Case("Resize", (randn(1, 2, 4, 5), None, None, i64(1, 4, 8, 10)), {"mode": "nearest"}, opset=13,
         label="nearest_channels"),
    Case("Resize", (randn(1, 2, 4, 5), Init(np.zeros(0, dtype=np.float32)), Init(np.array([1, 1, 2, 2], dtype=np.float32))),
         {"mode": "linear"}, opset=11, label="linear_opset11"),
    Case("Resize", (randn(1, 2, 4, 5), None, None, i64(1, 2, 7, 9)), {"mode": "linear"}, opset=13, label="linear_sizes"),
    Case("Resize", (randn(1, 2, 8, 9), None, None, i64(1, 2, 5, 4)),
         {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}, opset=13, label="linear_down"),
    Case("Resize", (randn(1, 2, 4, 5), None, None, i64(1, 2, 7, 9)),
         {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, opset=13, label="linear_align_corners"),
    Case("Resize", (randn(1, 2, 4, 5), None, None, i64(7, 9)), {"mode": "cubic", "axes": [2, 3]}, opset=18,
         label="cubic_axes"),
    Case("Resize", (randn(2, 3, 6), None, Init(np.array([1, 1, 2.5], dtype=np.float32))),
         {"mode": "linear"}, opset=19, label="linear_1d_scale"),
    # ---- reductions
    Case("ReduceMean", (X4,), {"axes": [2, 3]}, opset=11, label="attr_keepdims"),
    Case("ReduceMean", (X4, i64(-1)), {"keepdims": 0}, opset=18, label="input"),
    Case("ReduceSum", (X4, i64(1)), opset=13, label="input"),
    Case("ReduceSum", (ints(2, 3, 4, dtype=I32),), {"keepdims": 0}, opset=13, label="int32_all"),
    Case("ReduceSum", (X4, Init(np.zeros(0, dtype=I64))), {"noop_with_empty_axes": 1}, opset=13, label="noop"),
    Case("ReduceMax", (X4,), {"axes": [1]}, opset=13),
    Case("ReduceMin", (ints(2, 3, 4),), {"keepdims": 0}, opset=13, label="all_int"),
    Case("ReduceL1", (X4,), {"axes": [3]}, opset=13),
    Case("ReduceL2", (X4, i64(2, 3)), opset=18),
    Case("ReduceSumSquare", (X4,), {"axes": [1], "keepdims": 0}, opset=13),
    Case("ArgMax", (randn(3, 7),), {"axis": 1}),
    Case("ArgMin", (randn(3, 7),), {"axis": 0, "keepdims": 0}),
    Case("TopK", (randn(3, 10), i64(4)), outputs=2, label="largest"),
    Case("TopK", (randn(3, 10, 2), i64(3)), {"axis": 1, "largest": 0}, outputs=2, label="smallest"),
    # ---- static values (their outputs are constants of the graph)
    Case("Shape", (X4,), {"start": 1, "end": -1}, opset=15),
    Case("Size", (X4,)),
    Case("ConstantOfShape", (i64(2, 3),), label="default"),
    Case("Range", (scalar(1, I64), scalar(10, I64), scalar(3, I64)), label="int"),
    Case("Range", (scalar(0.5), scalar(2.0), scalar(0.3)), label="float"),
    Case("NonZero", (Init(np.array([[1, 0, 2], [0, 3, 0]], dtype=np.float32)),)),
    Case("Mod", (Init(np.array([7, -7, 5], dtype=I64)), Init(np.array([3, 3, -2], dtype=I64)))),
    Case("Mod", (Init(np.array([7.5, -7.5], dtype=np.float32)), Init(np.array([2.0, 2.0], dtype=np.float32))),
         {"fmod": 1}, label="fmod"),
]

from onnx import numpy_helper as _nh  # noqa: E402

CASES += [
    Case("Constant", (), {"value": _nh.from_array(randn(2, 3))}, label="tensor"),
    Case("Constant", (), {"value_floats": [1.0, 2.5]}, opset=13, label="floats"),
    Case("Constant", (), {"value_int": 7}, opset=13, label="int"),
    Case("ConstantOfShape", (i64(2, 3),), {"value": _nh.from_array(np.array([5], dtype=I32))}, label="int32_value"),
]

# ---- ops third-party models needed: Einsum (Keras BERT), ReduceProd on shapes, If on a constant
from onnx import GraphProto as _Graph, TensorProto as _T, helper as _h  # noqa: E402


def _constant_branch(name: str, values) -> _Graph:
    node = _h.make_node("Constant", [], [f"{name}_out"], value=_nh.from_array(np.array(values, np.float32)))
    return _h.make_graph([node], name, [], [_h.make_tensor_value_info(f"{name}_out", _T.FLOAT, None)])


CASES += [
    Case("Einsum", (randn(2, 5, 4, 8), Init(randn(4, 8, 6))), {"equation": "abcd,cde->abe"}, label="dense"),
    Case("Einsum", (randn(2, 3, 4), randn(2, 4, 5)), {"equation": "b i j , b j k"}, label="implicit_spaces"),
    Case("ReduceProd", (Init(np.array([[2, 3], [4, 5]], dtype=I64)),), {"axes": [1]}, opset=13, label="static"),
    Case("If", (Init(np.array(True)),), {"then_branch": _constant_branch("then", [1.0, 2.0]),
                                         "else_branch": _constant_branch("else", [3.0])}, label="constant_true"),
]

# ---- recurrent layers: LSTM / GRU (W, R, B are weights; sequence lengths and states inputs)
_H, _I = 4, 3


def _rnn(gates: int, dirs: int = 1) -> tuple[Init, Init, Init]:
    return (Init(randn(dirs, gates * _H, _I, scale=0.5)), Init(randn(dirs, gates * _H, _H, scale=0.5)),
            Init(randn(dirs, 2 * gates * _H, scale=0.5)))


CASES += [
    Case("LSTM", (randn(5, 2, _I), *_rnn(4)), {"hidden_size": _H}, outputs=3, label="forward"),
    Case("LSTM", (randn(6, 3, _I), *_rnn(4, 2), np.array([6, 2, 4], I32), randn(2, 3, _H), randn(2, 3, _H)),
         {"hidden_size": _H, "direction": "bidirectional"}, outputs=3, label="bidirectional_lengths_states"),
    Case("LSTM", (randn(5, 2, _I), *_rnn(4)[:2], None, None, randn(1, 2, _H)),
         {"hidden_size": _H, "direction": "reverse"}, outputs=2, label="reverse_state"),
    Case("GRU", (randn(5, 2, _I), *_rnn(3)), {"hidden_size": _H}, outputs=2, label="onnx_reset"),
    Case("GRU", (randn(6, 3, _I), *_rnn(3, 2), np.array([1, 6, 3], I32)),
         {"hidden_size": _H, "direction": "bidirectional", "linear_before_reset": 1}, outputs=2,
         label="torch_reset_lengths"),
]

# ---- pre-quantized models' ops, one at a time (integer results are computed exactly)
U8, S8 = np.uint8, np.int8


def _codes(*shape: int, dtype=U8) -> np.ndarray:
    lo, hi = (0, 256) if dtype == U8 else (-128, 128)
    return np.random.default_rng(sum(shape)).integers(lo, hi, shape).astype(dtype)


CASES += [
    Case("QuantizeLinear", (randn(2, 3, 4, scale=3.0), scalar(0.05), Init(np.array(128, U8))), label="uint8"),
    Case("QuantizeLinear", (randn(2, 3, 4), Init(np.array([0.01, 0.02, 0.04], np.float32)),
                            Init(np.array([0, 0, 0], S8))), {"axis": 1}, label="int8_per_axis"),
    Case("DequantizeLinear", (_codes(2, 3, dtype=S8), scalar(0.1), Init(np.array(-3, S8))), label="run_time_codes"),
    Case("DequantizeLinear", (Init(_codes(4, 3, dtype=S8)), Init(np.array([0.1, 0.2, 0.3, 0.4], np.float32))),
         {"axis": 0}, label="stored_weight"),
    Case("DynamicQuantizeLinear", (randn(2, 5, scale=2.0),), outputs=3),
    Case("MatMulInteger", (_codes(3, 4), Init(_codes(4, 5, dtype=S8)), Init(np.array(7, U8)), Init(np.array(0, S8)))),
    Case("ConvInteger", (_codes(1, 2, 5, 5), Init(_codes(3, 2, 3, 3, dtype=S8)), Init(np.array(100, U8))),
         {"pads": [1, 1, 1, 1]}),
    Case("QLinearMatMul", (_codes(3, 4), scalar(0.02), Init(np.array(120, U8)), Init(_codes(4, 5, dtype=S8)),
                           scalar(0.03), Init(np.array(0, S8)), scalar(0.05), Init(np.array(128, U8)))),
    Case("QLinearConv", (_codes(1, 2, 5, 5), scalar(0.02), Init(np.array(120, U8)), Init(_codes(3, 2, 3, 3, dtype=S8)),
                         Init(np.array([0.01, 0.02, 0.03], np.float32)), Init(np.zeros(3, S8)), scalar(0.2),
                         Init(np.array(128, U8)), Init(np.array([5, -40, 300], np.int32))), {"pads": [1, 1, 1, 1]}),
]

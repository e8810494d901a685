"""The shared op catalogue: one-node graphs, one or more per registered op, with representative
attributes. The backend tests and the shape-inference tests all run it."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from compiler.ir import Graph, TensorType
from compiler.ops import get_op

_gen = torch.Generator().manual_seed(0)


def randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(shape, generator=_gen) * scale


def positive(*shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=_gen) + 0.1


def ints(*shape: int, low: int = 0, high: int = 10, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    return torch.randint(low, high, shape, generator=_gen, dtype=dtype)


@dataclass(frozen=True)
class W:
    """Marks an op input as a weight (initializer) instead of a graph input."""

    tensor: torch.Tensor


@dataclass
class OpCase:
    """One node of `op` applied to `inputs` (tensors -> graph inputs, W -> weights, None -> absent)."""

    op: str
    inputs: tuple
    attrs: dict = field(default_factory=dict)
    label: str = ""
    min_opset: int = 0

    @property
    def id(self) -> str:
        return f"{self.op}-{self.label}" if self.label else self.op

    def build(self) -> tuple[Graph, list[torch.Tensor]]:
        """A graph with this one node; returns it with the example inputs."""
        graph = Graph(self.id.replace("-", "_"))
        names = [n.strip("*?") for n in get_op(self.op).inputs]
        values, feeds = [], []
        for i, item in enumerate(self.inputs):
            name = names[min(i, len(names) - 1)] + (str(i) if get_op(self.op).variadic else "")
            if item is None:
                values.append(None)
            elif isinstance(item, W):
                values.append(graph.add_weight(f"{self.op}.{name}", item.tensor))
            else:
                values.append(graph.add_input(name, TensorType.of(item)))
                feeds.append(item)
        node = graph.create_node(self.op, values, self.attrs, name=self.op)
        graph.outputs = list(node.outputs)
        return graph, feeds


def conv_attrs(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1) -> dict:
    return dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def pool_attrs(kernel, stride, padding, **extra) -> dict:
    return dict(kernel=kernel, stride=stride, padding=padding, **extra)


_DIV_A = torch.cat([randn(16, scale=5.0), torch.tensor([1.0, -1.0, 7.0, -7.0, 0.0, 3.0, -0.0, 5.0])])
_DIV_B = torch.cat([randn(16), torch.tensor([0.1, 0.1, -2.0, 2.0, 3.0, 0.0, -4.0, -0.5])])

OP_CASES: list[OpCase] = [
    # ---- nn
    OpCase("conv", (randn(2, 4, 9, 9), W(randn(6, 4, 3, 3)), W(randn(6))), conv_attrs(padding=(1, 1)), "bias"),
    OpCase("conv", (randn(1, 4, 9, 9), W(randn(8, 2, 3, 3))), conv_attrs((2, 2), (1, 1), groups=2), "grouped_strided"),
    OpCase("conv", (randn(1, 4, 10, 10), W(randn(4, 1, 3, 3)), W(randn(4))),
           conv_attrs(padding=(2, 2), dilation=(2, 2), groups=4), "depthwise_dilated"),
    OpCase("conv", (randn(1, 3, 8, 9), W(randn(4, 3, 1, 3))), conv_attrs((2, 1), (0, 1)), "asymmetric"),
    OpCase("conv", (randn(2, 3, 16), W(randn(5, 3, 5)), W(randn(5))), conv_attrs((2,), (2,), (1,)), "1d"),
    OpCase("conv", (randn(1, 2, 5, 6, 6), W(randn(3, 2, 3, 3, 3))), conv_attrs((1, 1, 1), (1, 1, 1), (1, 1, 1)), "3d"),
    OpCase("conv_transpose", (randn(1, 4, 5, 5), W(randn(4, 3, 3, 3)), W(randn(3))),
           dict(stride=(2, 2), padding=(1, 1), output_padding=(1, 1), dilation=(1, 1)), "output_padding"),
    OpCase("conv_transpose", (randn(1, 4, 7), W(randn(4, 2, 3))),
           dict(stride=(3,), padding=(1,), output_padding=(1,), dilation=(2,), groups=2), "1d_grouped_dilated"),
    OpCase("linear", (randn(3, 8), W(randn(5, 8)), W(randn(5))), {}, "2d_gemm"),
    OpCase("linear", (randn(3, 8), W(randn(5, 8))), {}, "2d_no_bias"),
    OpCase("linear", (randn(2, 4, 8), W(randn(5, 8)), W(randn(5))), {}, "3d_matmul"),
    OpCase("linear", (randn(2, 4, 8), W(randn(5, 8))), {}, "3d_no_bias"),
    OpCase("linear", (randn(2, 4, 8), randn(5, 8), randn(5)), {}, "weight_is_input"),
    OpCase("matmul", (randn(2, 3, 4, 5), W(randn(5, 6))), {}, "weight"),
    OpCase("matmul", (randn(2, 1, 4, 5), randn(3, 5, 2)), {}, "broadcast"),
    OpCase("matmul", (randn(5), randn(2, 5, 3)), {}, "vector"),
    OpCase("embedding", (ints(2, 5), W(randn(10, 4))), {}, "int64"),
    OpCase("embedding", (ints(7, dtype=torch.int32), W(randn(10, 4))), {}, "int32"),
    # ---- norm
    OpCase("batch_norm", (randn(2, 4, 5, 5), W(randn(4)), W(positive(4)), W(randn(4)), W(randn(4))), {}, "affine"),
    OpCase("batch_norm", (randn(3, 4), W(randn(4)), W(positive(4))), {"eps": 1e-3}, "2d_no_affine"),
    OpCase("batch_norm", (randn(2, 4, 7), W(randn(4)), W(positive(4)), None, W(randn(4))), {}, "1d_bias_only"),
    OpCase("layer_norm", (randn(2, 5, 8), W(randn(8)), W(randn(8))), {"normalized_shape": (8,)}, "affine"),
    OpCase("layer_norm", (randn(2, 5, 8), W(randn(5, 8))), {"normalized_shape": (5, 8), "eps": 1e-6}, "2dims_no_bias"),
    OpCase("layer_norm", (randn(2, 5, 8), None, W(randn(8))), {"normalized_shape": (8,)}, "bias_only"),
    OpCase("group_norm", (randn(2, 6, 4, 4), W(randn(6)), W(randn(6))), {"num_groups": 3}, "affine"),
    OpCase("group_norm", (randn(2, 6, 5), None, None), {"num_groups": 2}, "1d_no_affine"),
    OpCase("group_norm", (randn(2, 4, 3, 3), W(randn(4))), {"num_groups": 4, "eps": 1e-3}, "weight_only"),
    # ---- activations
    *[OpCase(op, (randn(2, 3, 4, 5, scale=3.0),)) for op in (
        "relu", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid", "exp", "neg", "abs", "erf")],
    *[OpCase(op, (positive(2, 3, 4),)) for op in ("log", "sqrt", "rsqrt")],
    *[OpCase(op, (randn(2, 3, 4, scale=3.0),)) for op in ("sin", "cos")],
    OpCase("sin", (ints(2, 5),), {}, "int_to_float"),
    OpCase("gelu", (randn(2, 3, 4, scale=3.0),), {}, "exact"),
    OpCase("gelu", (randn(2, 3, 4, scale=3.0),), {"approximate": "tanh"}, "tanh"),
    OpCase("leaky_relu", (randn(2, 3, 4),), {"negative_slope": 0.2}),
    OpCase("clip", (randn(2, 3, 4, scale=4.0),), {"min": 0.0, "max": 6.0}, "relu6"),
    OpCase("clip", (randn(2, 3, 4),), {"min": -0.5}, "min_only"),
    OpCase("clip", (randn(2, 3, 4),), {"max": 0.5}, "max_only"),
    OpCase("softmax", (randn(2, 3, 4),), {"dim": 1}),
    OpCase("softmax", (randn(2, 3, 4),), {"dim": -1}, "last"),
    OpCase("log_softmax", (randn(2, 3, 4),), {"dim": -1}),
    # ---- elementwise binary
    OpCase("add", (randn(2, 3, 4), W(randn(3, 1))), {}, "broadcast"),
    OpCase("add", (ints(2, 3), W(randn(3))), {}, "int_plus_float"),
    OpCase("sub", (randn(2, 3, 4), randn(4))),
    OpCase("mul", (randn(2, 3, 4), W(torch.tensor(2.5))), {}, "scalar"),
    OpCase("mul", (ints(2, 3), ints(2, 3)), {}, "int"),
    OpCase("div", (randn(2, 3, 4), positive(3, 1))),
    OpCase("div", (ints(2, 5, low=-20, high=20), ints(5, low=1, high=6)), {}, "int_true"),
    OpCase("div", (_DIV_A, _DIV_B), {"rounding_mode": "floor"}, "float_floor"),
    OpCase("div", (_DIV_A, _DIV_B), {"rounding_mode": "trunc"}, "float_trunc"),
    OpCase("div", (ints(4, 6, low=-20, high=20), torch.tensor([3, -3, 4, -4, 7, -1])), {"rounding_mode": "floor"}, "int_floor"),
    OpCase("div", (ints(4, 6, low=-20, high=20, dtype=torch.int32),
                   torch.tensor([3, -3, 4, -4, 7, -1], dtype=torch.int32)), {"rounding_mode": "trunc"}, "int_trunc"),
    OpCase("pow", (positive(2, 3), randn(3))),
    OpCase("pow", (randn(2, 3), W(torch.tensor(2.0))), {}, "square"),
    OpCase("maximum", (randn(2, 3, 4), randn(3, 4))),
    OpCase("minimum", (randn(2, 3, 4), W(randn(1, 4)))),
    # ---- shape
    OpCase("reshape", (randn(2, 3, 4),), {"shape": (6, 4)}),
    OpCase("reshape", (randn(2, 3, 4),), {"shape": (2, 1, 12)}, "unsqueeze"),
    OpCase("permute", (randn(2, 3, 4, 5),), {"dims": (0, 2, 3, 1)}),
    OpCase("permute", (randn(2, 3, 4),), {"dims": (-1, 0, 1)}, "negative"),
    OpCase("concat", (randn(2, 3, 4), randn(2, 1, 4), W(randn(2, 2, 4))), {"dim": 1}),
    OpCase("concat", (randn(2, 3), randn(2, 5)), {"dim": -1}, "last"),
    OpCase("split", (randn(2, 6, 4),), {"sizes": (2, 3, 1), "dim": 1}),
    OpCase("split", (randn(2, 6, 4),), {"sizes": (2, 2), "dim": -1}, "last"),
    OpCase("slice", (randn(2, 9, 4),), {"dim": 1, "start": 1, "end": 8, "step": 2}, "step"),
    OpCase("slice", (randn(2, 9, 4),), {"dim": 2, "start": 2, "end": 100}, "end_past_size"),
    OpCase("expand", (randn(3, 1),), {"shape": (2, 3, 4)}),
    OpCase("pad", (randn(1, 2, 4, 5),), {"pads": (1, 2, 0, 1), "value": 1.5}, "constant"),
    OpCase("pad", (randn(1, 2, 4, 5),), {"pads": (-1, 2, 1, -1)}, "negative_crop"),
    OpCase("pad", (ints(2, 3, 4),), {"pads": (1, 1), "value": 7.0}, "int"),
    OpCase("pad", (randn(1, 2, 4, 5),), {"pads": (2, 1, 1, 2), "mode": "reflect"}, "reflect"),
    OpCase("pad", (randn(1, 2, 6),), {"pads": (3, 1), "mode": "replicate"}, "replicate"),
    OpCase("pad", (randn(1, 2, 4, 5),), {"pads": (2, 1, 1, 2), "mode": "circular"}, "circular", min_opset=19),
    OpCase("cast", (randn(2, 3, scale=5.0),), {"dtype": torch.int32}, "float_to_int"),
    OpCase("cast", (randn(2, 3),), {"dtype": torch.float16}, "to_half"),
    OpCase("cast", (ints(2, 3),), {"dtype": torch.float32}, "int_to_float"),
    OpCase("cast", (torch.tensor([0.0, 1.5, -2.0]),), {"dtype": torch.bool}, "to_bool"),
    # ---- pooling and resampling
    OpCase("max_pool", (randn(1, 2, 9, 9),), pool_attrs((3, 3), (2, 2), (1, 1), dilation=(1, 1))),
    OpCase("max_pool", (randn(1, 2, 8, 8),), pool_attrs((3, 3), (2, 2), (0, 0), dilation=(1, 1), ceil_mode=True), "ceil"),
    OpCase("max_pool", (randn(1, 2, 9, 9),), pool_attrs((2, 2), (2, 2), (1, 1), dilation=(1, 1), ceil_mode=True), "ceil_padded"),
    OpCase("max_pool", (randn(1, 2, 11, 11),), pool_attrs((3, 3), (1, 1), (1, 1), dilation=(2, 2)), "dilated"),
    OpCase("max_pool", (randn(1, 2, 9, 10),), pool_attrs((2, 2), (2, 2), (1, 1), dilation=(2, 2), ceil_mode=True),
           "ceil_dilated"),
    OpCase("max_pool", (randn(2, 3, 10),), pool_attrs((3,), (2,), (1,), dilation=(1,)), "1d"),
    OpCase("avg_pool", (randn(1, 2, 9, 9),), pool_attrs((3, 3), (2, 2), (1, 1)), "include_pad"),
    OpCase("avg_pool", (randn(1, 2, 9, 9),), pool_attrs((3, 3), (2, 2), (1, 1), count_include_pad=False), "exclude_pad"),
    OpCase("avg_pool", (randn(1, 2, 8, 8),), pool_attrs((3, 3), (2, 2), (0, 0), ceil_mode=True), "ceil"),
    OpCase("avg_pool", (randn(1, 2, 8, 8),), pool_attrs((3, 3), (2, 2), (1, 1), ceil_mode=True), "ceil_include_pad"),
    OpCase("avg_pool", (randn(2, 3, 10),), pool_attrs((2,), (2,), (0,)), "1d"),
    OpCase("avg_pool", (randn(1, 2, 4, 6, 6),), pool_attrs((2, 2, 2), (2, 2, 2), (0, 0, 0)), "3d"),
    OpCase("adaptive_avg_pool", (randn(2, 3, 7, 7),), {"output_size": (1, 1)}, "global"),
    OpCase("adaptive_avg_pool", (randn(2, 3, 8, 6),), {"output_size": (4, 3)}, "divisible"),
    OpCase("adaptive_avg_pool", (randn(2, 3, 12),), {"output_size": (3,)}, "1d"),
    OpCase("adaptive_max_pool", (randn(2, 3, 7, 7),), {"output_size": (1, 1)}, "global"),
    OpCase("adaptive_max_pool", (randn(2, 3, 8, 8),), {"output_size": (2, 4)}, "divisible"),
    OpCase("resize", (randn(1, 2, 4, 5),), {"size": (8, 10)}, "nearest_2x"),
    OpCase("resize", (randn(1, 2, 5, 7),), {"size": (7, 4)}, "nearest_uneven"),
    OpCase("resize", (randn(1, 2, 5, 7),), {"size": (8, 3), "mode": "nearest-exact"}, "nearest_exact"),
    OpCase("resize", (randn(1, 2, 4, 5),), {"size": (7, 9), "mode": "bilinear", "align_corners": False}, "bilinear"),
    OpCase("resize", (randn(1, 2, 8, 9),), {"size": (5, 4), "mode": "bilinear", "align_corners": False}, "bilinear_down"),
    OpCase("resize", (randn(1, 2, 4, 5),), {"size": (7, 9), "mode": "bilinear", "align_corners": True}, "bilinear_corners"),
    OpCase("resize", (randn(1, 2, 4, 5),), {"size": (7, 9), "mode": "bicubic", "align_corners": False}, "bicubic"),
    OpCase("resize", (randn(1, 2, 4, 5),), {"size": (6, 11), "mode": "bicubic", "align_corners": True}, "bicubic_corners"),
    OpCase("resize", (randn(2, 3, 6),), {"size": (11,), "mode": "linear", "align_corners": False}, "linear_1d"),
    OpCase("resize", (randn(1, 2, 3, 4, 4),), {"size": (5, 6, 8), "mode": "trilinear", "align_corners": False}, "trilinear"),
    # ---- reductions
    *[OpCase(op, (randn(2, 3, 4, 5),), {"dims": (2, 3), "keepdim": True}, "spatial_keepdim")
      for op in ("reduce_mean", "reduce_sum", "reduce_max", "reduce_min")],
    *[OpCase(op, (randn(2, 3, 4),), {"dims": (-1,)}, "last")
      for op in ("reduce_mean", "reduce_sum", "reduce_max", "reduce_min")],
    OpCase("reduce_sum", (ints(2, 3, 4, dtype=torch.int32),), {"dims": (1,)}, "int32_to_int64"),
    OpCase("reduce_max", (ints(2, 3, 4),), {"dims": (0, 2)}, "int"),
    OpCase("cumsum", (randn(2, 3, 4),), {"dim": 1}),
    OpCase("cumsum", (ints(2, 6, low=0, high=2),), {"dim": -1}, "int_mask_to_int64"),
    OpCase("cumsum", (torch.tensor([[True, False, True, True]]),), {"dim": 1}, "bool"),
]

# ---- ops added for the ONNX frontend (compiler/ops/logic.py, pointwise.py, select.py)
_TIES = torch.tensor([[1.0, 3.0, 3.0, -2.0], [0.5, 0.5, -1.0, -1.0]])
OP_CASES += [
    *[OpCase(op, (ints(2, 3, 4, low=0, high=3), W(ints(3, 1, low=0, high=3))), {}, "int")
      for op in ("equal", "less", "greater", "less_equal", "greater_equal")],
    *[OpCase(op, (randn(2, 3, 4), randn(4)), {}, "float")
      for op in ("equal", "less", "greater", "less_equal", "greater_equal")],
    OpCase("less", (ints(2, 3, dtype=torch.int32), randn(3)), {}, "promoted"),
    OpCase("greater_equal", (torch.tensor([True, False, True]), torch.tensor([False, False, True])), {}, "bool"),
    *[OpCase(op, (torch.tensor([True, False, True, False]), torch.tensor([True, True, False, False])), {}, "bool")
      for op in ("logical_and", "logical_or", "logical_xor")],
    OpCase("logical_and", (ints(2, 3, low=-1, high=2), randn(3)), {}, "nonzero_is_true"),
    OpCase("logical_not", (torch.tensor([True, False]),), {}, "bool"),
    OpCase("logical_not", (ints(2, 3, low=-1, high=2),), {}, "int"),
    OpCase("where", (randn(2, 3, 4) > 0, randn(2, 3, 4), W(randn(4))), {}, "broadcast"),
    OpCase("where", (torch.tensor([True, False, True]), ints(3), W(torch.tensor(0.5))), {}, "promoted"),
    *[OpCase(op, (randn(2, 3, 4, scale=3.0),)) for op in ("floor", "ceil")],
    OpCase("round", (torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, 0.49, 2.51, -3.7]),), {}, "half_to_even"),
    OpCase("reciprocal", (positive(2, 3),)),
    OpCase("prelu", (randn(2, 3, 4, 5), W(randn(3))), {}, "per_channel"),
    OpCase("prelu", (randn(2, 3, 4), W(randn(1))), {}, "shared"),
    OpCase("prelu", (randn(5, 3), W(randn(3))), {}, "2d"),
    OpCase("gather", (randn(4, 5, 6), W(torch.tensor([3, 0, -1]))), {"dim": 1}, "vector"),
    OpCase("gather", (randn(4, 5), W(torch.tensor([[0, 2], [-1, 1]]))), {"dim": 0}, "matrix_indices"),
    OpCase("gather", (randn(4, 5), W(torch.tensor(2))), {"dim": 1}, "scalar_index"),
    OpCase("gather", (randn(4, 5), ints(3, high=5, dtype=torch.int32)), {"dim": 1}, "int32_input"),
    OpCase("tile", (randn(2, 3),), {"repeats": (2, 3)}),
    OpCase("tile", (ints(2, 1, 3),), {"repeats": (1, 4, 1)}, "int"),
    OpCase("topk", (randn(3, 10),), {"k": 4}, "largest"),
    OpCase("topk", (randn(3, 10, 2),), {"k": 3, "dim": 1, "largest": False}, "smallest_dim1"),
    OpCase("argmax", (_TIES,), {"dim": 1}, "ties_first"),
    OpCase("argmax", (randn(2, 3, 4),), {"dim": 0, "keepdim": True}, "keepdim"),
    OpCase("argmin", (_TIES,), {"dim": -1}, "ties_first"),
    OpCase("argmin", (ints(2, 5),), {"dim": 1, "keepdim": True}, "int"),
]

# ---- ops added for third-party models (einsum: Keras BERT; lstm/gru: OCR and speech models)
OP_CASES += [
    OpCase("einsum", (randn(2, 5, 4, 8), W(randn(4, 8, 6))), {"equation": "abcd,cde->abe"}, "dense_over_two_dims"),
    OpCase("einsum", (randn(2, 3, 4, 5), randn(2, 3, 5, 4)), {"equation": "...ij,...jk"}, "implicit_batched"),
    OpCase("einsum", (randn(3, 4),), {"equation": "ij->ji"}, "transpose"),
    OpCase("lstm", (randn(5, 2, 3), W(randn(1, 16, 3)), W(randn(1, 16, 4)), W(randn(1, 16)), W(randn(1, 16))),
           {}, "forward"),
    OpCase("lstm", (randn(5, 2, 3), W(randn(2, 16, 3)), W(randn(2, 16, 4)), W(randn(2, 16)), None,
                    randn(2, 2, 4), randn(2, 2, 4)), {"direction": "bidirectional"}, "bidirectional_states"),
    OpCase("lstm", (randn(6, 3, 3), W(randn(1, 16, 3)), W(randn(1, 16, 4)), None, W(randn(1, 16)), None, None,
                    torch.tensor([6, 2, 4], dtype=torch.int32)), {"direction": "reverse"}, "reverse_lengths"),
    OpCase("gru", (randn(5, 2, 3), W(randn(1, 12, 3)), W(randn(1, 12, 4)), W(randn(1, 12)), W(randn(1, 12))),
           {}, "forward"),
    OpCase("gru", (randn(6, 3, 3), W(randn(2, 12, 3)), W(randn(2, 12, 4)), W(randn(2, 12)), W(randn(2, 12)),
                   randn(2, 3, 4), torch.tensor([3, 6, 1])), {"direction": "bidirectional",
                                                               "linear_before_reset": False}, "onnx_reset_lengths"),
]

from tests.op_cases_quant import QUANT_CASES  # noqa: E402  (fake_quant cases)
OP_CASES += QUANT_CASES

from tests.op_cases_integer import INTEGER_CASES  # noqa: E402  (the integer form's ops)
OP_CASES += INTEGER_CASES

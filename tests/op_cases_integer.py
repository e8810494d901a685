"""Catalogue cases for the integer form's ops (appended to tests/op_cases.OP_CASES): every backend
must reproduce them exactly, integer outputs compared bit for bit."""
from __future__ import annotations

import torch

from compiler.quant.fixed_point import fixed_point
from tests.op_cases import OpCase, W, conv_attrs, ints, randn


def codes(*shape: int, dtype=torch.int8) -> torch.Tensor:
    lo, hi = (-128, 128) if dtype == torch.int8 else (0, 256)
    return ints(*shape, low=lo, high=hi, dtype=torch.int32).to(dtype)


def i32(*values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int32)


_m, _n = fixed_point(torch.tensor([0.0123, 0.5, 0.00071, 3.0]))
_m1, _n1 = fixed_point(torch.tensor(0.25))   # a power of two: exact ties, rounded half to even
_acc = ints(2, 4, 3, 3, low=-3000, high=3000, dtype=torch.int32)
_q = dict(qmin=-128, qmax=127, dtype=torch.int8)

INTEGER_CASES: list[OpCase] = [
    OpCase("quantize", (randn(2, 3, 4, scale=3.0), W(torch.tensor(0.05))), dict(axis=None, **_q), "int8"),
    OpCase("quantize", (randn(2, 3, 4, scale=3.0), W(torch.tensor(0.05)), W(torch.tensor(7, dtype=torch.int32))),
           dict(axis=None, qmin=0, qmax=255, dtype=torch.uint8), "uint8_zero_point"),
    OpCase("quantize", (randn(2, 3, 4), W(torch.tensor(0.1))), dict(axis=None, qmin=-8, qmax=7), "int4_range"),
    OpCase("quantize", (randn(2, 3, 4), W(torch.tensor([1e-3, 1e-2, 1e-1]))),
           dict(axis=1, qmin=-2**31, qmax=2**31 - 1, dtype=torch.int32), "int32_per_channel"),
    OpCase("dequantize", (codes(2, 3, 4), W(torch.tensor(0.05))), {"axis": None}, "int8"),
    OpCase("dequantize", (codes(2, 3, 4, dtype=torch.uint8), W(torch.tensor(0.05)), W(torch.tensor(9, dtype=torch.int32))),
           {"axis": None}, "uint8_zero_point"),
    OpCase("dequantize", (_acc, W(torch.tensor([1e-3, 2e-3, 3e-3, 4e-3]))), {"axis": 1}, "int32_per_channel"),
    OpCase("dequantize", (_acc.to(torch.int64), W(torch.tensor(1e-3)), W(torch.tensor(-5, dtype=torch.int32))),
           {"axis": None}, "int64_zero_point"),
    OpCase("requantize", (_acc, W(_m), W(_n)), dict(axis=1, **_q), "per_channel"),
    OpCase("requantize", (torch.arange(-40, 40, dtype=torch.int32), W(_m1), W(_n1)), dict(axis=None, **_q),
           "ties_to_even"),
    OpCase("requantize", (codes(2, 5, dtype=torch.uint8), W(_m1), W(_n1), W(torch.tensor(128, dtype=torch.int32)),
                          W(torch.tensor(3, dtype=torch.int32))), dict(axis=None, qmin=0, qmax=100, dtype=torch.uint8),
           "zero_points_clamped"),
    OpCase("int_conv", (codes(2, 4, 6, 6), W(codes(6, 4, 3, 3)), W(ints(6, low=-500, high=500, dtype=torch.int32))),
           conv_attrs(padding=(1, 1)), "bias"),
    OpCase("int_conv", (codes(1, 4, 5, 5, dtype=torch.uint8), W(codes(4, 1, 3, 3)), None,
                        W(torch.tensor(128, dtype=torch.int32)), W(i32(1, -2, 0, 3).to(torch.int32))),
           conv_attrs(stride=(2, 2), padding=(1, 1), groups=4), "depthwise_zero_points"),
    OpCase("int_linear", (codes(3, 16), W(codes(5, 16)), W(ints(5, low=-99, high=99, dtype=torch.int32))), {}, "bias"),
    OpCase("int_linear", (codes(2, 3, 16, dtype=torch.uint8), W(codes(5, 16)), None,
                          W(torch.tensor(100, dtype=torch.int32))), {}, "uint8_zero_point"),
    OpCase("int_matmul", (codes(2, 3, 8), codes(2, 8, 4)), {}, "batched"),
    OpCase("int_matmul", (codes(3, 8, dtype=torch.uint8), codes(8, 4, dtype=torch.uint8),
                          W(torch.tensor(128, dtype=torch.int32)), W(torch.tensor(120, dtype=torch.int32))), {},
           "zero_points"),
]

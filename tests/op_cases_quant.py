"""Catalogue cases for `fake_quant` (appended to tests/op_cases.OP_CASES).

These run everywhere the catalogue runs: shape inference, the PyTorch backend (bit-exact) and
onnxruntime at the lowest and highest opsets (FP4/MXFP4/NVFP4 have no onnxruntime CPU kernels:
tests/test_quant_onnx.py runs those cases in onnx.reference instead, REFERENCE_CASES below).
"""
from __future__ import annotations

import torch

from compiler.quant import parse_format
from compiler.quant.formats import block_amax
from tests.op_cases import OpCase, W, randn

_x = randn(2, 6, 5, 5, scale=2.0)
_w = randn(6, 4, 3, 3)
_lin = randn(8, 40)


def _scale(fmt: str, t: torch.Tensor, axis=None) -> torch.Tensor:
    f = parse_format(fmt)
    if axis is None:
        lo, hi = t.min(), t.max()
    else:
        dims = [d for d in range(t.dim()) if d != axis]
        lo, hi = t.amin(dims), t.amax(dims)
    return f.params(lo, hi)


def _case(fmt: str, x, axis=None, label="", min_opset=0, weight=False, block=0) -> OpCase:
    t = x.tensor if isinstance(x, W) else x
    if block:
        amax = block_amax(t, axis, block)
        scale, zp = parse_format(fmt).params(-amax, amax)
    else:
        scale, zp = _scale(fmt, t, axis)
    inputs = (x, W(scale)) + ((W(zp),) if zp is not None else ())
    return OpCase("fake_quant", inputs, {"format": fmt, "axis": axis, "block_size": block},
                  label or fmt, min_opset)


def _block_case(fmt: str, w: torch.Tensor, label: str) -> OpCase:
    f = parse_format(fmt)
    scale, tensor_scale = f.params_for(w, 1)
    inputs = (W(w), W(scale)) + ((None, W(tensor_scale)) if tensor_scale is not None else ())
    return OpCase("fake_quant", inputs, {"format": fmt, "axis": 1, "block_size": f.block_size}, label, 23)


QUANT_CASES: list[OpCase] = [
    _case("int8", _x, label="int8_tensor_activation"),
    _case("int8", W(_w), axis=0, label="int8_channel_weight"),
    _case("int8-narrow", _x, axis=1, label="int8_narrow_channel_activation"),
    _case("uint8", _x, label="uint8_asym_activation"),
    _case("int8-asym", W(_w), axis=0, label="int8_asym_channel_weight"),
    _case("int5", _x, label="int5_activation_clamped"),
    _case("uint6", W(_w), axis=0, label="uint6_weight"),
    _case("int4", W(_w), axis=0, label="int4_channel_weight", min_opset=21),
    _case("int4", _x, label="int4_activation", min_opset=21),
    _case("uint4", _x, axis=1, label="uint4_channel_activation", min_opset=21),
    _case("int4", W(_lin), axis=1, block=16, label="int4_group_weight", min_opset=21),
    _case("int8", _lin, axis=1, block=8, label="int8_group_activation", min_opset=21),
    _case("fp8-e4m3", _x, label="fp8_e4m3_activation", min_opset=19),
    _case("fp8-e5m2", W(_w), axis=0, label="fp8_e5m2_channel_weight", min_opset=19),
]

# Formats onnxruntime has no CPU kernels for: checked with onnx.reference.ReferenceEvaluator.
REFERENCE_CASES: list[OpCase] = [
    _case("fp4-e2m1", _x, label="fp4_activation", min_opset=23),
    _case("fp4-e2m1", W(_w), axis=0, label="fp4_channel_weight", min_opset=23),
    _block_case("mxfp4", _lin, "mxfp4_weight"),
    _block_case("nvfp4", randn(8, 48), "nvfp4_weight"),
    _case("fp4-e2m1", _lin, axis=1, block=32, label="fp4_group_activation", min_opset=23),
]

# Formats ONNX cannot carry: the PyTorch backend runs them, the ONNX backend must refuse them.
TORCH_ONLY_CASES: list[OpCase] = [
    _case("fp4-e3m0", _x, label="fp4_e3m0"),
    _case("fp4-e1m2", W(_w), axis=0, label="fp4_e1m2_weight"),
    _case("fp6-e3m2", _x, label="fp6_e3m2"),
    _case("int2", _x, label="int2"),
]

"""Fake-quantization kernels: quantize then dequantize, in plain torch.

Torch only, no nnforge imports: the interpreter calls these functions through the op registry
(`fake_quant`), the PyTorch backend emits the same calls into its GraphModule, and the generated
standalone `model.py` carries this module's source, so all three compute bit-identical results.

Scales follow ONNX's QuantizeLinear conventions: a 0-d scale is per tensor; a 1-d scale runs
along `axis`; with `block_size` the scale has the input's rank and `ceil(d / block_size)` entries
along `axis` (each entry shared by `block_size` consecutive elements). Division by the scale and
round-half-to-even are what QuantizeLinear specifies, so exported QDQ models agree.
"""
from __future__ import annotations

import torch


def expand_scale(s: torch.Tensor, x: torch.Tensor, axis: int | None, block_size: int) -> torch.Tensor:
    """`s` broadcastable against `x` under the per-tensor / per-axis / blocked conventions."""
    if s.dim() == 0 or axis is None:
        return s
    axis = axis % x.dim()
    if block_size:
        return s.repeat_interleave(block_size, dim=axis).narrow(axis, 0, x.shape[axis])
    shape = [1] * x.dim()
    shape[axis] = -1
    return s.reshape(shape)


def quantize_int(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor | None = None, *,
                 qmin: int, qmax: int, axis: int | None = None, block_size: int = 0) -> torch.Tensor:
    """Uniform integer grid: clamp(round(x / s) + zp, qmin, qmax), then (q - zp) * s."""
    s = expand_scale(scale, x, axis, block_size)
    q = torch.round(x / s)
    if zero_point is None:
        return torch.clamp(q, qmin, qmax) * s
    zp = expand_scale(zero_point, x, axis, block_size)
    return (torch.clamp(q + zp, qmin, qmax) - zp) * s


def quantize_float(x: torch.Tensor, scale: torch.Tensor, tensor_scale: torch.Tensor | None = None, *,
                   mantissa_bits: int, min_exponent: int, max_value: float, axis: int | None = None,
                   block_size: int = 0) -> torch.Tensor:
    """A sign-magnitude floating-point grid (ExMy) at scale s, round to nearest even, saturating.

    A value |y| = |x| / s in binade [2^e, 2^(e+1)) moves in steps of 2^(e - mantissa_bits);
    below 2^min_exponent the step stays 2^(min_exponent - mantissa_bits) (subnormals). The
    real-valued exponent bias b of the format is folded into s: s = 2^(b0 - b) for the format's
    default bias b0. `tensor_scale` (NVFP4's per-tensor FP32 scale) multiplies the block scales.
    """
    s = expand_scale(scale, x, axis, block_size)
    if tensor_scale is not None:
        s = s * tensor_scale
    y = x / s
    a = torch.clamp(torch.abs(y), max=max_value)
    smallest = 2.0 ** (min_exponent - mantissa_bits)
    if a.dtype == torch.float32:  # 2^floor(log2 a) straight from the exponent bits (0 for 0 and subnormals)
        binade = torch.bitwise_and(a.view(torch.int32), 0x7F800000).view(torch.float32)
        step = torch.clamp(binade * 2.0 ** -mantissa_bits, min=smallest)
    else:
        exponent = torch.clamp(torch.frexp(a).exponent - 1, min=min_exponent)
        step = torch.ldexp(torch.ones_like(a), exponent - mantissa_bits)
    q = torch.round(a / step) * step
    return torch.copysign(q, y) * s

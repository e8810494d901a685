"""Integer kernels: the reference semantics of nnforge's integer form (docs/integer-form.md).

Torch only, no nnforge imports: the interpreter calls these through the op registry, the PyTorch
backend emits the same calls, and a generated standalone `model.py` carries this source, so all
three agree bit for bit. Every result is an integer tensor computed without float rounding:

* products and sums of integer codes run in float64, which is exact while every partial sum stays
  below 2^53 (an 8-bit x 8-bit dot product of length K needs K < 2^37); the result is cast back;
* requantization is fixed point: y = (x * m) / 2^shift rounded half to even, in int64, with
  m < 2^31 and 1 <= shift <= 62 (ONNX QLinear's rounding; ap_fixed's AP_RND_CONV in HLS);
* quantize/dequantize at a graph's float boundary follow ONNX QuantizeLinear/DequantizeLinear
  (x / scale in float32, round half to even, clamp; (q - zero_point) * scale in float32).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def broadcast_along(t: torch.Tensor | None, rank: int, axis: int | None) -> torch.Tensor | None:
    """A 0-d tensor as it is; a 1-d per-channel tensor shaped to broadcast along `axis`."""
    if t is None or t.dim() == 0 or axis is None:
        return t
    shape = [1] * rank
    shape[axis % rank] = -1
    return t.reshape(shape)


def quantize_codes(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor | None = None, *,
                   qmin: int, qmax: int, axis: int | None = None, dtype: torch.dtype = torch.int8) -> torch.Tensor:
    """Float -> codes: clamp(round_half_even(x / scale) + zero_point, qmin, qmax)."""
    q = torch.round(x / broadcast_along(scale, x.dim(), axis))
    if zero_point is not None:
        q = q + broadcast_along(zero_point, x.dim(), axis).to(q.dtype)
    return torch.clamp(q, qmin, qmax).to(dtype)


def dequantize_codes(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor | None = None, *,
                     axis: int | None = None) -> torch.Tensor:
    """Codes -> float32: (q - zero_point) * scale (the subtraction in int64, the product in float32)."""
    centred = q.to(torch.int64)
    if zero_point is not None:
        centred = centred - broadcast_along(zero_point, q.dim(), axis).to(torch.int64)
    return centred.to(torch.float32) * broadcast_along(scale, q.dim(), axis)


def requantize_fixed(x: torch.Tensor, multiplier: torch.Tensor, shift: torch.Tensor,
                     x_zero_point: torch.Tensor | None = None, zero_point: torch.Tensor | None = None, *,
                     qmin: int, qmax: int, axis: int | None = None,
                     dtype: torch.dtype = torch.int8) -> torch.Tensor:
    """Integer -> integer at a new scale: y = clamp(rhe((x - zx) * m / 2^shift) + zy, qmin, qmax).

    rhe rounds half to even: with p = (x - zx) * m, f = floor(p / 2^shift) and r = p - f * 2^shift,
    y = f + (r > 2^(shift-1)) + (r == 2^(shift-1) and f odd). All in int64.
    """
    rank = x.dim()
    p = x.to(torch.int64)
    if x_zero_point is not None:
        p = p - broadcast_along(x_zero_point, rank, axis).to(torch.int64)
    p = p * broadcast_along(multiplier, rank, axis).to(torch.int64)
    n = broadcast_along(shift, rank, axis).to(torch.int64)
    f = torch.bitwise_right_shift(p, n)                      # arithmetic shift: floor division
    r = p - torch.bitwise_left_shift(f, n)
    half = torch.bitwise_left_shift(torch.ones_like(n), n - 1)
    y = f + (r > half).to(torch.int64) + ((r == half) & (torch.bitwise_and(f, 1) == 1)).to(torch.int64)
    if zero_point is not None:
        y = y + broadcast_along(zero_point, rank, axis).to(torch.int64)
    return torch.clamp(y, qmin, qmax).to(dtype)


def _centred(t: torch.Tensor, zero_point: torch.Tensor | None, axis: int) -> torch.Tensor:
    out = t.to(torch.float64)
    return out if zero_point is None else out - broadcast_along(zero_point, t.dim(), axis).to(torch.float64)


def int_conv(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None,
             x_zero_point: torch.Tensor | None = None, w_zero_point: torch.Tensor | None = None, *,
             stride, padding, dilation, groups: int = 1) -> torch.Tensor:
    """int32 accumulator of conv((x - zx), (w - zw)) + bias; padding is a real zero (code zx)."""
    conv = (F.conv1d, F.conv2d, F.conv3d)[len(stride) - 1]
    acc = conv(_centred(x, x_zero_point, 1), _centred(w, w_zero_point, 0), None, stride=stride,
               padding=padding, dilation=dilation, groups=groups)
    if bias is not None:
        acc = acc + broadcast_along(bias, acc.dim(), -len(stride) - 1).to(torch.float64)
    return acc.to(torch.int32)


def int_linear(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None,
               x_zero_point: torch.Tensor | None = None, w_zero_point: torch.Tensor | None = None) -> torch.Tensor:
    """int32 accumulator of (x - zx) @ (w - zw).T + bias, weight [out, in]."""
    acc = F.linear(_centred(x, x_zero_point, -1), _centred(w, w_zero_point, 0),
                   None if bias is None else bias.to(torch.float64))
    return acc.to(torch.int32)


def int_matmul(a: torch.Tensor, b: torch.Tensor, a_zero_point: torch.Tensor | None = None,
               b_zero_point: torch.Tensor | None = None) -> torch.Tensor:
    """int32 accumulator of (a - za) @ (b - zb) (per-tensor zero points)."""
    return torch.matmul(_centred(a, a_zero_point, -1), _centred(b, b_zero_point, -1)).to(torch.int32)

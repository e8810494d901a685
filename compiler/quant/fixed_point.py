"""Real rescale factors as fixed-point multipliers: M = m * 2^-shift.

The integer form requantizes with an integer multiplier m in [2^30, 2^31) (a Q31 mantissa, as
gemmlowp and TFLite normalize theirs) and a right shift, one pair per tensor or per channel.
"""
from __future__ import annotations

import math

import torch

MAX_SHIFT = 62   # (x * m) stays in int64 for |x| < 2^32
MANTISSA_BITS = 31


class FixedPointError(ValueError):
    """A rescale factor the fixed-point form cannot hold (not positive, or 2^30 and more)."""


def fixed_point(factor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(multiplier int32, shift int32) with multiplier * 2^-shift == factor to 31 significant bits.

    Factors so small that the shift would pass 62 keep shift 62 and a smaller multiplier (values
    that small round to zero for any int32 input anyway)."""
    flat = factor.detach().double().reshape(-1).tolist()
    ms, shifts = [], []
    for f in flat:
        if not (f > 0 and math.isfinite(f)):
            raise FixedPointError(f"rescale factor {f!r} is not a positive finite number")
        mantissa, exponent = math.frexp(f)           # f = mantissa * 2^exponent, mantissa in [0.5, 1)
        m = round(mantissa * 2 ** MANTISSA_BITS)
        if m == 2 ** MANTISSA_BITS:
            m, exponent = m // 2, exponent + 1
        shift = MANTISSA_BITS - exponent
        if shift < 1:
            raise FixedPointError(f"rescale factor {f:g} is too large for a right shift (at most 2^30)")
        if shift > MAX_SHIFT:
            m, shift = round(m / 2 ** (shift - MAX_SHIFT)), MAX_SHIFT
        ms.append(m)
        shifts.append(shift)
    shape = factor.shape
    return (torch.tensor(ms, dtype=torch.int32).reshape(shape),
            torch.tensor(shifts, dtype=torch.int32).reshape(shape))


def real_factor(multiplier: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """The factor a (multiplier, shift) pair stands for, in float64 (exact)."""
    return multiplier.double() * torch.pow(2.0, -shift.double())

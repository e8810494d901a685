"""Every number format nnforge quantizes to, in one place.

    int2 .. int8        signed, symmetric (zero point 0), full range [-2^(b-1), 2^(b-1) - 1]
    int8-narrow         signed symmetric, narrow range [-(2^(b-1) - 1), 2^(b-1) - 1]
    int8-asym           signed with a zero point
    uint2 .. uint8      unsigned with a zero point (uint8-sym: zero point 0, for non-negative data)
    fp4-e2m1 (= fp4)    ExMy floating point: sign, E exponent bits, M mantissa bits, subnormals,
    fp4-e3m0, fp4-e1m2  no inf/nan (OCP style), saturating; e4m3 is OCP FP8 (max 448) and e5m2
    fp6-e2m3, fp6-e3m2  IEEE-like (max 57344). Any split fpN-eXmY with N = 1 + X + Y <= 16 and
    fp8-e4m3, fp8-e5m2  X >= 1 is accepted; the exponent bias is real valued (see FloatFormat).
    mxfp4               OCP MX: blocks of 32 E2M1 values sharing an E8M0 power-of-two scale
    nvfp4               blocks of 16 E2M1 values sharing an E4M3 scale, plus one FP32 tensor scale

`parse_format("int4")` gives the format object; its `fake_quant` runs the same torch kernel the
`fake_quant` op runs (compiler/quant/kernels.py), `grid()` lists its non-negative values at unit
scale, and `encode` gives the stored integers/minifloats as an ml_dtypes array for export.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import ml_dtypes
import numpy as np
import torch

from compiler.quant import kernels

ALLOWED = ("int2..int8 (suffixes -sym, -asym, -narrow), uint2..uint8 (-sym, -asym), "
           "fp4-e2m1 (fp4), fp4-e3m0, fp4-e1m2, fp6-e2m3, fp6-e3m2, fp8-e4m3, fp8-e5m2, "
           "any fpN-eXmY (N = 1 + X + Y <= 16), mxfp4, nvfp4")


class FormatError(ValueError):
    """An unknown or unsupported format string; the message names the allowed ones."""


def _reject(text: str, why: str = "") -> FormatError:
    return FormatError(f"unsupported quantization format '{text}'{': ' + why if why else ''}; "
                       f"allowed: {ALLOWED}")


# ---- integers ------------------------------------------------------------------------------
@dataclass(frozen=True)
class IntFormat:
    bits: int
    signed: bool = True
    symmetric: bool = True
    narrow: bool = False

    kind = "int"

    @property
    def name(self) -> str:
        base = f"{'' if self.signed else 'u'}int{self.bits}"
        if self.signed and not self.symmetric:
            base += "-asym"
        if not self.signed and self.symmetric:
            base += "-sym"
        return base + ("-narrow" if self.narrow else "")

    @property
    def qmin(self) -> int:
        if not self.signed:
            return 0
        return -(2 ** (self.bits - 1)) + (1 if self.narrow else 0)

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.signed else 2 ** self.bits - 1 - (1 if self.narrow else 0)

    @property
    def storage_bits(self) -> float:
        return float(self.bits)

    @property
    def max_value(self) -> float:
        """The largest magnitude code of a symmetric grid (scale = clipping max / max_value)."""
        return float(self.qmax)

    @property
    def has_zero_point(self) -> bool:
        return not self.symmetric

    def grid(self) -> torch.Tensor:
        return torch.arange(self.qmin, self.qmax + 1, dtype=torch.float32)

    def call(self, x, scale, zero_point=None, tensor_scale=None, *, axis=None, block_size=0):
        return (kernels.quantize_int, (x, scale, zero_point),
                {"qmin": self.qmin, "qmax": self.qmax, "axis": axis, "block_size": block_size})

    def params(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Scale (and zero point) mapping the range [lo, hi] onto the integer grid."""
        lo, hi = lo.double(), hi.double()
        if self.symmetric:
            amax = torch.maximum(hi.abs(), lo.abs()) if self.signed else hi.clamp(min=0)
            scale = amax / self.qmax
            return _safe_scale(scale).float(), None
        lo, hi = lo.clamp(max=0), hi.clamp(min=0)  # zero must be exactly representable
        scale = _safe_scale((hi - lo) / (self.qmax - self.qmin))
        zp = torch.clamp(torch.round(self.qmin - lo / scale), self.qmin, self.qmax)
        return scale.float(), zp.float()

    def encode(self, x: torch.Tensor, scale, zero_point=None, *, axis=None, block_size=0) -> np.ndarray:
        s = kernels.expand_scale(scale, x, axis, block_size)
        q = torch.round(x / s)
        if zero_point is not None:
            q = q + kernels.expand_scale(zero_point, x, axis, block_size)
        q = torch.clamp(q, self.qmin, self.qmax).numpy().astype(np.int32)
        return q.astype(self.numpy_dtype)

    @property
    def numpy_dtype(self):
        if self.bits == 4:
            return ml_dtypes.int4 if self.signed else ml_dtypes.uint4
        if self.bits == 2:
            return ml_dtypes.int2 if self.signed else ml_dtypes.uint2
        return np.int8 if self.signed else np.uint8


# ---- floating point ------------------------------------------------------------------------
_ML_FLOATS = {(2, 1): ml_dtypes.float4_e2m1fn, (2, 3): ml_dtypes.float6_e2m3fn,
              (3, 2): ml_dtypes.float6_e3m2fn, (4, 3): ml_dtypes.float8_e4m3fn,
              (5, 2): ml_dtypes.float8_e5m2}


@dataclass(frozen=True)
class FloatFormat:
    """ExMy: value = (-1)^s * 2^(e - bias) * (1 + m / 2^M), subnormal at e = 0.

    The grid at the default bias 2^(E-1) - 1 is `grid()`. A real-valued bias b is the same grid
    scaled by 2^(default_bias - b): the kernels take it as the scale, `bias_of(scale)` and
    `scale_of(bias)` convert. E4M3 follows OCP FP8 (one NaN code, max 448) and E5M2 IEEE
    (inf/NaN codes, max 57344); every other split uses all codes for finite values.
    """

    exponent_bits: int
    mantissa_bits: int

    kind = "float"
    has_zero_point = False

    @property
    def name(self) -> str:
        return f"fp{self.total_bits}-e{self.exponent_bits}m{self.mantissa_bits}"

    @property
    def total_bits(self) -> int:
        return 1 + self.exponent_bits + self.mantissa_bits

    @property
    def storage_bits(self) -> float:
        return float(self.total_bits)

    @property
    def default_bias(self) -> int:
        return 2 ** (self.exponent_bits - 1) - 1

    @property
    def min_exponent(self) -> int:
        return 1 - self.default_bias

    @property
    def max_value(self) -> float:
        e, m = self.exponent_bits, self.mantissa_bits
        if (e, m) == (4, 3):
            return 448.0
        if (e, m) == (5, 2):
            return 57344.0
        return 2.0 ** (2 ** e - 1 - self.default_bias) * (2 - 2.0 ** -m)

    def grid(self) -> torch.Tensor:
        m, values = self.mantissa_bits, {0.0}
        for e in range(0, 2 ** self.exponent_bits):
            for k in range(2 ** m):
                v = (k / 2 ** m) * 2.0 ** self.min_exponent if e == 0 else \
                    (1 + k / 2 ** m) * 2.0 ** (e - self.default_bias)
                if v <= self.max_value:
                    values.add(v)
        return torch.tensor(sorted(values), dtype=torch.float32)

    def scale_of(self, bias: float) -> float:
        return 2.0 ** (self.default_bias - bias)

    def bias_of(self, scale: float) -> float:
        return self.default_bias - math.log2(scale)

    def call(self, x, scale, zero_point=None, tensor_scale=None, *, axis=None, block_size=0):
        return (kernels.quantize_float, (x, scale, tensor_scale),
                {"mantissa_bits": self.mantissa_bits, "min_exponent": self.min_exponent,
                 "max_value": self.max_value, "axis": axis, "block_size": block_size})

    def params(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, None]:
        amax = torch.maximum(lo.double().abs(), hi.double().abs())
        return _safe_scale(amax / self.max_value).float(), None

    @property
    def numpy_dtype(self):
        return _ML_FLOATS.get((self.exponent_bits, self.mantissa_bits))

    def encode(self, x: torch.Tensor, scale, zero_point=None, *, axis=None, block_size=0,
               tensor_scale=None) -> np.ndarray:
        if self.numpy_dtype is None:
            raise FormatError(f"{self.name} has no storage type in ml_dtypes")
        s = kernels.expand_scale(scale, x, axis, block_size)
        if tensor_scale is not None:
            s = s * tensor_scale
        y = torch.clamp(x / s, -self.max_value, self.max_value)
        return y.numpy().astype(self.numpy_dtype)


# ---- block-scaled formats ------------------------------------------------------------------
E2M1 = FloatFormat(2, 1)
E4M3 = FloatFormat(4, 3)


@dataclass(frozen=True)
class BlockFormat:
    """E2M1 elements in blocks sharing a scale: MXFP4 (32, E8M0) or NVFP4 (16, E4M3 + FP32)."""

    name: str
    block_size: int
    scale_format: str  # "e8m0" or "e4m3"

    kind = "block"
    has_zero_point = False
    element = E2M1

    @property
    def storage_bits(self) -> float:
        return 4 + 8 / self.block_size

    def grid(self) -> torch.Tensor:
        return self.element.grid()

    def call(self, x, scale, zero_point=None, tensor_scale=None, *, axis=None, block_size=0):
        return self.element.call(x, scale, None, tensor_scale, axis=axis, block_size=block_size)

    def params_for(self, w: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(block scales, tensor scale or None) for a weight, blocks along `axis`."""
        amax = block_amax(w, axis, self.block_size)
        if self.scale_format == "e8m0":  # OCP MX: 2^(floor(log2 amax) - emax of E2M1)
            exponent = torch.floor(torch.log2(amax.double().clamp(min=2.0 ** -127))) - 2
            return torch.exp2(exponent.clamp(-127, 127)).float(), None
        tensor_amax = float(w.abs().max())
        tensor_scale = torch.tensor(tensor_amax / (6.0 * 448.0) if tensor_amax > 0 else 1.0)
        block = (amax.double() / 6.0 / tensor_scale.double()).float()
        block = torch.from_numpy(block.numpy().astype(ml_dtypes.float8_e4m3fn).astype(np.float32))
        return block.clamp(min=2.0 ** -9), tensor_scale.float()

    def encode(self, x, scale, zero_point=None, *, axis=None, block_size=0, tensor_scale=None):
        return self.element.encode(x, scale, axis=axis, block_size=block_size, tensor_scale=tensor_scale)


MXFP4 = BlockFormat("mxfp4", 32, "e8m0")
NVFP4 = BlockFormat("nvfp4", 16, "e4m3")
Format = IntFormat | FloatFormat | BlockFormat

_INT = re.compile(r"^(u?)int(\d+)((?:-(?:sym|asym|narrow))*)$")
_FLOAT = re.compile(r"^(?:fp(\d+)-)?e(\d+)m(\d+)$")
ALIASES = {"fp4": "fp4-e2m1", "fp8": "fp8-e4m3", "e8m0": None}


@lru_cache(maxsize=256)
def parse_format(text: str) -> Format:
    """The format named by `text` (see the module docstring); FormatError names the allowed ones."""
    if not isinstance(text, str):
        raise _reject(str(text))
    name = text.strip().lower()
    name = ALIASES.get(name, name) or ""
    if name == "mxfp4":
        return MXFP4
    if name == "nvfp4":
        return NVFP4
    match = _INT.match(name)
    if match:
        unsigned, bits, suffix = match.group(1) == "u", int(match.group(2)), match.group(3)
        if not 2 <= bits <= 8:
            raise _reject(text, f"integer widths are 2..8 bits, not {bits}")
        flags = [f for f in suffix.split("-") if f]
        if "sym" in flags and "asym" in flags:
            raise _reject(text, "both -sym and -asym")
        symmetric = "sym" in flags if unsigned else "asym" not in flags
        return IntFormat(bits, not unsigned, symmetric, "narrow" in flags)
    match = _FLOAT.match(name)
    if match:
        total, e, m = match.group(1), int(match.group(2)), int(match.group(3))
        if e < 1 or e > 8:
            raise _reject(text, "exponent bits must be 1..8")
        if total is not None and int(total) != 1 + e + m:
            raise _reject(text, f"fp{total} has 1 sign + {e} exponent + {m} mantissa = {1 + e + m} bits")
        if 1 + e + m > 16:
            raise _reject(text, "at most 16 bits")
        return FloatFormat(e, m)
    raise _reject(text)


def block_amax(w: torch.Tensor, axis: int, block_size: int) -> torch.Tensor:
    """max |w| per block of `block_size` along `axis` (scale layout: same rank, ceil(d/B) there)."""
    axis = axis % w.dim()
    d = w.shape[axis]
    blocks = -(-d // block_size)
    pad = blocks * block_size - d
    moved = w.abs().movedim(axis, -1)
    if pad:
        moved = torch.nn.functional.pad(moved, (0, pad))
    amax = moved.reshape(*moved.shape[:-1], blocks, block_size).amax(-1)
    return amax.movedim(-1, axis)


def _safe_scale(scale: torch.Tensor) -> torch.Tensor:
    """Scales of all-zero (or non-finite) ranges become 1: zero still maps to zero."""
    return torch.where(torch.isfinite(scale) & (scale > 0), scale, torch.ones_like(scale))


def fake_quant(fmt: Format, x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor | None = None,
               tensor_scale: torch.Tensor | None = None, *, axis: int | None = None,
               block_size: int = 0) -> torch.Tensor:
    """Quantize-dequantize `x` exactly as the `fake_quant` op does."""
    fn, args, kwargs = fmt.call(x, scale, zero_point, tensor_scale, axis=axis, block_size=block_size)
    return fn(*args, **kwargs)


KernelCall = tuple[Callable[..., Any], tuple, dict]

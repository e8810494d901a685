"""Number formats: golden value grids, bit-exactness against ml_dtypes, parameters, errors."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
import torch

from compiler.ir_parser import _annotation
from compiler.quant import MXFP4, NVFP4, FloatFormat, FormatError, IntFormat, QuantAnnotation, fake_quant, parse_format
from compiler.quant.formats import block_amax


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("name, grid", [
    ("fp4-e2m1", [0, 0.5, 1, 1.5, 2, 3, 4, 6]),
    ("fp4-e3m0", [0, 0.25, 0.5, 1, 2, 4, 8, 16]),
    ("fp4-e1m2", [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]),
    ("fp6-e3m2", [0, 0.0625, 0.125, 0.1875, 0.25, 0.3125, 0.375, 0.4375, 0.5, 0.625, 0.75, 0.875, 1, 1.25,
                  1.5, 1.75, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28]),
    ("mxfp4", [0, 0.5, 1, 1.5, 2, 3, 4, 6]),
    ("nvfp4", [0, 0.5, 1, 1.5, 2, 3, 4, 6]),
])
def test_golden_float_grids(name, grid):
    assert parse_format(name).grid().tolist() == grid


def test_fp8_grids_end_at_the_standard_maxima():
    e4m3, e5m2 = parse_format("fp8-e4m3"), parse_format("fp8-e5m2")
    assert e4m3.grid()[-3:].tolist() == [384, 416, 448] and len(e4m3.grid()) == 127
    assert e5m2.grid()[-1] == 57344 and float(e4m3.grid()[1]) == 2.0 ** -9


@pytest.mark.parametrize("name, lo, hi", [
    ("int8", -128, 127), ("int8-narrow", -127, 127), ("int4", -8, 7), ("int2", -2, 1),
    ("uint8", 0, 255), ("uint4", 0, 15), ("int5-asym", -16, 15), ("uint3-sym", 0, 7),
])
def test_integer_grids(name, lo, hi):
    fmt = parse_format(name)
    assert fmt.grid().tolist() == list(range(lo, hi + 1))
    assert fmt.name == name


@pytest.mark.parametrize("fmt, dtype", [
    ("fp4-e2m1", ml_dtypes.float4_e2m1fn), ("fp8-e4m3", ml_dtypes.float8_e4m3fn),
    ("fp8-e5m2", ml_dtypes.float8_e5m2), ("fp6-e2m3", ml_dtypes.float6_e2m3fn), ("fp6-e3m2", ml_dtypes.float6_e3m2fn),
])
@pytest.mark.parametrize("scale", [1.0, 0.37, 2.0 ** -7])
def test_float_kernel_is_bit_exact_with_ml_dtypes(fmt, dtype, scale):
    f = parse_format(fmt)
    x = torch.cat([torch.randn(50000, generator=torch.Generator().manual_seed(0)) * 3 * f.max_value * scale,
                   torch.tensor([0.25, 0.75, 2.5, 5.0, -0.25, 1e-9, 0.0, -0.0, 1e30, -float("inf")]) * scale])
    got = fake_quant(f, x, torch.tensor(scale))
    ref = torch.from_numpy(torch.clamp(x / scale, -f.max_value, f.max_value).numpy().astype(dtype)
                           .astype(np.float32)) * scale
    assert torch.equal(got, ref)
    assert torch.equal(torch.from_numpy(f.encode(x, torch.tensor(scale)).astype(np.float32)) * scale, got)


def test_rounding_is_to_nearest_even_and_saturating():
    e2m1 = parse_format("fp4-e2m1")
    x = torch.tensor([0.25, 0.75, 1.25, 2.5, 3.5, 5.0, 7.0, 100.0, -100.0])
    assert fake_quant(e2m1, x, torch.tensor(1.0)).tolist() == [0, 1, 1, 2, 4, 4, 6, 6, -6]
    int4 = parse_format("int4")
    assert fake_quant(int4, torch.tensor([0.5, 1.5, 2.5, -8.6, 9.0]), torch.tensor(1.0)).tolist() == [0, 2, 2, -8, 7]


def test_real_valued_exponent_bias_is_a_scale():
    e2m1 = FloatFormat(2, 1)
    assert e2m1.default_bias == 1 and e2m1.scale_of(1.0) == 1.0
    scale = e2m1.scale_of(0.3)
    assert e2m1.bias_of(scale) == pytest.approx(0.3)
    # bias b: the largest value is 2^(3 - b) * 1.5
    assert float(fake_quant(e2m1, torch.tensor(1e9), torch.tensor(scale))) == pytest.approx(2 ** (3 - 0.3) * 1.5)


def test_integer_params_symmetric_and_asymmetric():
    scale, zp = parse_format("int8").params(torch.tensor(-2.0), torch.tensor(1.0))
    assert zp is None and float(scale) == pytest.approx(2 / 127)
    scale, zp = parse_format("uint8").params(torch.tensor(0.5), torch.tensor(3.0))  # 0 must stay exact
    assert float(zp) == 0 and float(scale) == pytest.approx(3 / 255)
    x = torch.tensor([0.0, 1.0, -1.0])
    scale, zp = parse_format("int8-asym").params(torch.tensor(-1.0), torch.tensor(3.0))
    assert fake_quant(parse_format("int8-asym"), x, scale, zp)[0] == 0.0


def test_mxfp4_scales_are_powers_of_two_in_e8m0_range():
    w = torch.randn(4, 70, generator=torch.Generator().manual_seed(1))
    w[0, :32] = 0.0
    scale, tensor_scale = MXFP4.params_for(w, 1)
    assert tensor_scale is None and scale.shape == (4, 3)
    assert torch.equal(torch.from_numpy(scale.numpy().astype(ml_dtypes.float8_e8m0fnu).astype(np.float32)), scale)
    q = fake_quant(MXFP4, w, scale, axis=1, block_size=32)
    assert torch.equal(q[0, :32], torch.zeros(32))
    # every block's largest element lands in E2M1's top binade [4, 6]
    top = block_amax(q, 1, 32)[1:] / scale[1:]
    assert bool(((top >= 3) & (top <= 6)).all())


def test_nvfp4_block_scales_are_e4m3_values_with_an_fp32_tensor_scale():
    w = torch.randn(3, 48, generator=torch.Generator().manual_seed(2)) * 5
    scale, tensor_scale = NVFP4.params_for(w, 1)
    assert scale.shape == (3, 3) and tensor_scale.shape == ()
    assert torch.equal(torch.from_numpy(scale.numpy().astype(ml_dtypes.float8_e4m3fn).astype(np.float32)), scale)
    q = fake_quant(NVFP4, w, scale, None, tensor_scale, axis=1, block_size=16)
    assert float(((q - w) ** 2).mean() / (w ** 2).mean()) < 0.02


@pytest.mark.parametrize("text, message", [
    ("int9", "integer widths are 2..8 bits, not 9"),
    ("int1", "integer widths are 2..8"),
    ("fp4-e2m2", "fp4 has 1 sign + 2 exponent + 2 mantissa = 5 bits"),
    ("e0m3", "exponent bits must be 1..8"),
    ("float8", "unsupported quantization format 'float8'"),
    ("int8-sym-asym", "both -sym and -asym"),
])
def test_unsupported_formats_name_the_allowed_ones(text, message):
    with pytest.raises(FormatError) as info:
        parse_format(text)
    assert message in str(info.value)
    assert "allowed: int2..int8" in str(info.value) and "mxfp4, nvfp4" in str(info.value)


def test_format_aliases_and_generic_splits():
    assert parse_format("fp4") == parse_format("e2m1") == FloatFormat(2, 1)
    assert parse_format("fp8") == FloatFormat(4, 3)
    assert parse_format("uint8") == IntFormat(8, signed=False, symmetric=False)
    assert parse_format("fp7-e3m3").max_value == 2.0 ** 4 * (2 - 2 ** -3)


def test_annotation_prints_compactly_and_parses_back():
    ann = QuantAnnotation(format="int4", granularity="channel", axis=0, scale="w.scale", role="weight")
    text = "@" + ann.describe()
    assert text == "@quant<format='int4', granularity='channel', axis=0, scale='w.scale', role='weight'>"
    assert _annotation(text) == ann
    assert ann.spec() == IntFormat(4)
    with pytest.raises(ValueError, match="granularity"):
        QuantAnnotation(format="int8", granularity="row")

"""Quantization in the core: number formats, fake-quant kernels, the typed annotation.

Passes (passes/quantize/) and backends read these; nothing here imports them.
"""
from compiler.quant.annotation import QuantAnnotation
from compiler.quant.int_annotation import IntAnnotation
from compiler.quant.formats import (ALLOWED, MXFP4, NVFP4, BlockFormat, FloatFormat, Format, FormatError,
                                    IntFormat, fake_quant, parse_format)

__all__ = ["ALLOWED", "IntAnnotation", "MXFP4", "NVFP4", "BlockFormat", "FloatFormat", "Format", "FormatError",
           "IntFormat", "QuantAnnotation", "fake_quant", "parse_format"]

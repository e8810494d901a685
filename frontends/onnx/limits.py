"""The bounds every imported model must stay within, in one place.

They turn hostile or broken files (dims that would allocate terabytes, absurd ranks, files past
protobuf's limit) into a clear error before anything is allocated.
"""
from __future__ import annotations

import onnx

from compiler.memory import format_bytes  # noqa: F401  (re-exported for the frontend's messages)

MIN_OPSET = 11                                  # the oldest ai.onnx opset the mapping table covers
MAX_OPSET = onnx.defs.onnx_opset_version()     # the newest one the installed onnx knows
MAX_MODEL_BYTES = 2**31 - 1                     # protobuf cannot parse a larger message
MAX_TENSOR_BYTES = 2**34                        # 16 GiB: no single value of a graph may be larger
MAX_RANK = 16


def nbytes(shape: tuple[int, ...] | list[int], itemsize: int) -> int:
    n = itemsize
    for d in shape:
        n *= d
    return n

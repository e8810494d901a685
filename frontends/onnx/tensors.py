"""ONNX tensors and element types -> torch.

Initializers and Constant values become torch tensors over numpy arrays (`torch.from_numpy`, no
copy beyond reading the bytes out of the protobuf once). Declared dims are checked against the
bytes actually present before anything is reshaped, so a lying TensorProto is an error.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, numpy_helper

from compiler.errors import FrontendError
from frontends.onnx.external import read_external
from frontends.onnx.limits import MAX_RANK, MAX_TENSOR_BYTES, format_bytes, nbytes

ONNX_TO_TORCH = {
    TensorProto.FLOAT: torch.float32, TensorProto.DOUBLE: torch.float64,
    TensorProto.FLOAT16: torch.float16, TensorProto.BFLOAT16: torch.bfloat16,
    TensorProto.INT64: torch.int64, TensorProto.INT32: torch.int32, TensorProto.INT16: torch.int16,
    TensorProto.INT8: torch.int8, TensorProto.UINT8: torch.uint8, TensorProto.BOOL: torch.bool,
}
_NUMPY = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16,
          torch.bfloat16: np.uint16, torch.int64: np.int64, torch.int32: np.int32, torch.int16: np.int16,
          torch.int8: np.int8, torch.uint8: np.uint8, torch.bool: np.uint8}


def type_name(elem_type: int) -> str:
    try:
        return TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"unknown type {elem_type}"


def torch_dtype(elem_type: int, what: str) -> torch.dtype:
    try:
        return ONNX_TO_TORCH[elem_type]
    except KeyError:
        supported = ", ".join(type_name(t) for t in ONNX_TO_TORCH)
        raise FrontendError(f"{what} has element type {type_name(elem_type)}, which nnforge does not support",
                            hint=f"supported: {supported}") from None


def to_torch(proto: TensorProto, base_dir: Path | None, what: str, raw: np.ndarray | None = None) -> torch.Tensor:
    """A TensorProto's value as a CPU tensor (writable, not shared with the protobuf). `raw` holds
    the raw_data bytes when the loader read them apart from the protobuf (wire.py): the tensor is
    then a view of that array, not a copy."""
    dtype = torch_dtype(proto.data_type, what)
    dims = tuple(proto.dims)
    if len(dims) > MAX_RANK or any(d < 0 for d in dims):
        raise FrontendError(f"{what} declares invalid dims {list(dims)}")
    size = nbytes(dims, dtype.itemsize)
    if size > MAX_TENSOR_BYTES:
        raise FrontendError(f"{what} declares dims {list(dims)}: {format_bytes(size)}, more than the "
                            f"{format_bytes(MAX_TENSOR_BYTES)} allowed for one tensor")
    if proto.HasField("segment"):
        raise FrontendError(f"{what} is a segment of a tensor, which nnforge does not support")
    if proto.data_location == TensorProto.EXTERNAL:
        array = read_external(proto, base_dir, size, what).view(_NUMPY[dtype])
    elif raw is not None or proto.HasField("raw_data"):
        held = raw.size if raw is not None else len(proto.raw_data)
        if held != size:
            raise FrontendError(f"{what} declares dims {list(dims)} ({type_name(proto.data_type)}, {size} bytes) "
                                f"but holds {held} bytes", hint="the file is corrupted or was edited by hand")
        array = raw.view(_NUMPY[dtype]) if raw is not None else \
            np.frombuffer(proto.raw_data, dtype=_NUMPY[dtype]).copy()  # writable; the bytes object goes
    else:
        array = _typed_fields(proto, dtype, size // max(dtype.itemsize, 1), what)
    if dtype == torch.bool:
        array = array.view(np.uint8) != 0  # any nonzero byte is true
    tensor = torch.from_numpy(array.reshape(dims))
    return tensor.view(torch.bfloat16) if dtype == torch.bfloat16 else tensor


def _typed_fields(proto: TensorProto, dtype: torch.dtype, count: int, what: str) -> np.ndarray:
    field = onnx.helper.tensor_dtype_to_field(proto.data_type)
    held = len(getattr(proto, field))
    if held != count:
        raise FrontendError(f"{what} declares dims {list(proto.dims)} ({count} values) but holds {held}")
    if dtype == torch.bfloat16:
        return np.array(proto.int32_data, dtype=np.int32).astype(np.uint16)
    array = numpy_helper.to_array(proto)
    return np.ascontiguousarray(array).view(_NUMPY[dtype]).reshape(-1) if dtype != torch.bool \
        else np.ascontiguousarray(array).reshape(-1)


def looks_like_parameter(tensor: torch.Tensor) -> bool:
    """ONNX has no parameter/buffer distinction: floating tensors of more than one value, whether
    initializers or Constant nodes (Paddle keeps its weights in those), count as parameters."""
    return tensor.is_floating_point() and tensor.numel() > 1

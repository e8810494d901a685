"""Run a SIMD-group sparse layer through the C++ kernel, from torch tensors.

The PyTorch backend emits calls to these functions with the packed weight as buffers
(`compiler/sparse/packing.py`), so the generated module computes what the masked dense layer
computes, skipping the pruned groups. Inference only: no autograd through the kernel.
"""
from __future__ import annotations

import ctypes

import torch

from compiler.sparse.build import SparseKernelError, load_kernel


def _check(code: int, what: str) -> None:
    if code:
        raise SparseKernelError(f"the sparse kernel rejected the {what} arguments (code {code})",
                                hint="this is a bug in nnforge's packing; please report it")


def sparse_conv(x: torch.Tensor, block_start: torch.Tensor, offsets: torch.Tensor, values: torch.Tensor,
                bias: torch.Tensor, geometry: tuple[int, ...], lanes: int, spatial: int) -> torch.Tensor:
    """conv1d (`spatial` 1) or conv2d (2) of x with the packed weight, batched or not; `geometry`
    is `ConvGeometry.shape_vector` (a conv1d is a conv2d of height 1)."""
    batch, channels, height, width, out_channels, out_height, out_width = geometry[:7]
    expected = (channels, height, width) if spatial == 2 else (channels, width)
    if tuple(x.shape[-spatial - 1:]) != expected or x.numel() != batch * channels * height * width:
        raise SparseKernelError(f"this sparse conv was packed for inputs {[batch, *expected]}",
                                where=f"got {list(x.shape)}")
    image = x.reshape(batch, channels, height, width).contiguous().float()
    y = torch.empty(batch, out_channels, out_height, out_width)
    shape = (ctypes.c_int64 * len(geometry))(*geometry)
    _check(load_kernel().nnf_sparse_conv2d(image.data_ptr(), y.data_ptr(), shape, lanes, block_start.data_ptr(),
                                           offsets.data_ptr(), values.data_ptr(), bias.data_ptr()), "conv")
    spatial_out = (out_height, out_width) if spatial == 2 else (out_width,)
    return y.reshape(*x.shape[:-spatial - 1], out_channels, *spatial_out)


def sparse_matmul(x: torch.Tensor, block_start: torch.Tensor, offsets: torch.Tensor, values: torch.Tensor,
                  bias: torch.Tensor, in_features: int, out_features: int, lanes: int) -> torch.Tensor:
    """x [..., in] times the packed [out, in] weight (transposed), plus bias: [..., out]."""
    k = x.shape[-1] if x.dim() else 0
    if k != in_features:
        raise SparseKernelError(f"this sparse matmul was packed for inputs [..., {in_features}]",
                                where=f"got {list(x.shape)}")
    rows = x.reshape(-1, k).contiguous().float()
    y = torch.empty(rows.shape[0], out_features)
    _check(load_kernel().nnf_sparse_matmul(rows.data_ptr(), y.data_ptr(), rows.shape[0], k, out_features, lanes,
                                           block_start.data_ptr(), offsets.data_ptr(), values.data_ptr(),
                                           bias.data_ptr()), "matmul")
    return y.reshape(*x.shape[:-1], out_features)

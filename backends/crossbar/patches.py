"""Input vectors in, layer outputs out: how a conv, a transposed conv or a linear layer is fed.

* gather (conv): im2col for any number of spatial dims; each output position reads one patch,
  ordered input channel major and kernel position minor (the order `WeightLayout.matrices` uses).
* scatter (transposed conv): each input position drives one vector into the crossbar, whose
  columns are (output channel, kernel position); the digital unit overlap-adds them (col2im).
* rows (linear, matmul with a constant matrix): the last axis is the vector.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _spatial(attrs: dict) -> int:
    return len(attrs["stride"])


def gather(codes: torch.Tensor, attrs: dict, kernel: tuple[int, ...], groups: int, pad_value: float):
    """codes [B, C, *sp] -> (patches [B * P, groups, C / groups * prod(kernel)], output spatial shape)."""
    k = _spatial(attrs)
    pads = []
    for p in reversed(attrs["padding"]):
        pads += [p, p]
    x = F.pad(codes, pads, value=pad_value) if any(attrs["padding"]) else codes
    for i in range(k):
        span = attrs["dilation"][i] * (kernel[i] - 1) + 1
        x = x.unfold(2 + i, span, attrs["stride"][i])
        if attrs["dilation"][i] > 1:
            x = x[..., ::attrs["dilation"][i]]
    batch = x.shape[0]
    out_spatial = tuple(x.shape[2:2 + k])
    order = [0] + list(range(2, 2 + k)) + [1] + list(range(2 + k, 2 + 2 * k))
    patches = x.permute(order).reshape(batch * _prod(out_spatial), groups, -1)
    return patches, out_spatial


def gather_output(acc: torch.Tensor, batch: int, out_spatial: tuple[int, ...]) -> torch.Tensor:
    """acc [B * P, out] -> [B, out, *spatial]."""
    k = len(out_spatial)
    y = acc.reshape((batch,) + out_spatial + (acc.shape[-1],))
    return y.permute([0, k + 1] + list(range(1, k + 1)))


def scatter_input(codes: torch.Tensor, groups: int) -> torch.Tensor:
    """codes [B, C, *sp] -> [B * L, groups, C / groups] (one vector per input position)."""
    k = codes.dim() - 2
    x = codes.permute([0] + list(range(2, 2 + k)) + [1])
    return x.reshape(-1, groups, codes.shape[1] // groups)


def scatter_output(acc: torch.Tensor, batch: int, in_spatial: tuple[int, ...], out_channels: int,
                   kernel: tuple[int, ...], attrs: dict, out_spatial: tuple[int, ...]) -> torch.Tensor:
    """col2im: acc [B * L, out * prod(kernel)] (channel major) overlap-added into [B, out, *out_spatial]."""
    k = len(kernel)
    cols = acc.reshape((batch,) + in_spatial + (out_channels,) + kernel)
    stride, dilation, padding = attrs["stride"], attrs["dilation"], attrs["padding"]
    full = [(in_spatial[i] - 1) * stride[i] + dilation[i] * (kernel[i] - 1) + 1 for i in range(k)]
    full = [max(f, padding[i] + out_spatial[i]) for i, f in enumerate(full)]
    out = acc.new_zeros((batch, out_channels) + tuple(full))
    order = [0, k + 1] + list(range(1, k + 1))
    for position in torch.cartesian_prod(*[torch.arange(n) for n in kernel]).reshape(-1, k).tolist():
        block = cols[(slice(None),) * (k + 2) + tuple(position)].permute(order)
        target = [slice(None), slice(None)] + [
            slice(position[i] * dilation[i], position[i] * dilation[i] + (in_spatial[i] - 1) * stride[i] + 1,
                  stride[i]) for i in range(k)]
        out[tuple(target)] += block
    crop = [slice(None), slice(None)] + [slice(padding[i], padding[i] + out_spatial[i]) for i in range(k)]
    return out[tuple(crop)]


def _prod(xs) -> int:
    n = 1
    for x in xs:
        n *= x
    return n

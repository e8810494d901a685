"""Scratch tensors reused from one chunk of tiles to the next.

The simulation makes the same few megabyte-sized temporaries for every chunk of tiles (levels,
noise draws, conductances, input planes, currents). Fresh allocations that large are mapped from
the kernel by the C allocator and page-faulted in on first touch, every time: that doubled the
cost of a table lookup or a noise draw. A `Scratch` keeps one buffer per name, grown to the
largest size asked for, and hands out views of it; a view is valid until the same name is asked
for again.
"""
from __future__ import annotations

import math

import torch


class Scratch:
    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def __call__(self, name: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """An uninitialised tensor of `shape`, a view of the buffer `name`."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.dtype != dtype or buffer.numel() < size:
            buffer = self._buffers[name] = torch.empty(size, dtype=dtype)
        return buffer[:size].view(shape)

    def nbytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in self._buffers.values())

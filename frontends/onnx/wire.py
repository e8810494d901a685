"""Reading a .onnx file so that each weight is read from disk exactly once, into its own array.

`onnx.load` parses the whole file into protobuf memory and `to_array` copies every weight out of
it again: twice the weight bytes at the peak, and a slow parse of bytes nobody needs parsed. Here
the protobuf wire format is walked by hand along the two places weights live:

    ModelProto.graph (7) -> GraphProto.initializer (5)                        -> TensorProto.raw_data (9)
    ModelProto.graph (7) -> GraphProto.node (1) -> NodeProto.attribute (5) -> AttributeProto.t (5) -> ...

(Paddle exports, for one, keep every weight in Constant nodes). Each raw_data payload is read
straight from the file into a fresh, aligned numpy array; everything else is copied verbatim
into a "stripped" serialization that protobuf then parses (small: no weight bytes). Every length
is bounds-checked, so a truncated or hostile file is a `WireError`, never a read past its end.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

TENSOR_RAW_DATA = 9
_DESCEND = {("model", 7): "graph", ("graph", 5): "initializer", ("graph", 1): "node",
            ("node", 5): "attribute", ("attribute", 5): "attribute_tensor"}
_TENSORS = ("initializer", "attribute_tensor")


class WireError(Exception):
    """The bytes are not a well-formed protobuf message."""


@dataclass
class RawData:
    """The raw_data read apart, in wire order: of each initializer, and of each attribute tensor
    (AttributeProto.t) node by node, attribute by attribute; None where a tensor had none."""

    initializer: list[np.ndarray | None] = field(default_factory=list)
    attribute_tensor: list[np.ndarray | None] = field(default_factory=list)


def read_stripped(f: BinaryIO, size: int) -> tuple[bytes, RawData]:
    """(the ModelProto without those raw_data fields, the raw_data)."""
    walker = _Walker(f)
    return walker.message(0, size, "model"), walker.raw


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise WireError("a varint runs past its message or is too long")
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return value, i
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


class _Walker:
    def __init__(self, f: BinaryIO):
        self.f = f
        self.raw = RawData()

    def read(self, pos: int, n: int) -> bytes:
        self.f.seek(pos)
        data = self.f.read(n)
        if len(data) != n:
            raise WireError("the file ended early")
        return data

    def field(self, pos: int, end: int) -> tuple[int, int, int, int]:
        """(field number, wire type, payload start, field end) of the field starting at pos."""
        head = self.read(pos, min(20, end - pos))
        key, i = _varint(head, 0)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        if wire == 0:
            _, j = _varint(head, i)
            return number, wire, pos + i, pos + j
        if wire in (1, 5):
            stop = pos + i + (8 if wire == 1 else 4)
        elif wire == 2:
            length, j = _varint(head, i)
            stop = pos + j + length
            i = j
        else:
            raise WireError(f"wire type {wire} (groups are not used by ONNX)")
        if stop > end:
            raise WireError("a field runs past the end of its message")
        return number, wire, pos + i, stop

    def message(self, start: int, end: int, level: str) -> bytes:
        out = bytearray()
        raw: np.ndarray | None = None
        pos = start
        while pos < end:
            number, wire, payload, stop = self.field(pos, end)
            inner = _DESCEND.get((level, number)) if wire == 2 else None
            if inner is not None:
                body = self.message(payload, stop, inner)
                out += _encode_varint(number << 3 | 2) + _encode_varint(len(body)) + body
            elif level in _TENSORS and number == TENSOR_RAW_DATA and wire == 2:
                raw = np.empty(stop - payload, dtype=np.uint8)   # the last one wins, as in protobuf
                self.f.seek(payload)
                if self.f.readinto(memoryview(raw)) != raw.size:
                    raise WireError("the file ended early")
            else:
                out += self.read(pos, stop - pos)
            pos = stop
        if level in _TENSORS:
            getattr(self.raw, level).append(raw)
        return bytes(out)

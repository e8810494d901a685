"""Reading external tensor data, confined to the model's own folder.

An initializer may keep its bytes in another file (`location`, `offset`, `length` in
TensorProto.external_data). The location must stay inside the model's folder
(`frontends.confined`); offsets and lengths are plain ASCII digits, and ranges past the end of
the file are refused.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx

from compiler.errors import FrontendError
from frontends.confined import confined_file


def read_external(proto: onnx.TensorProto, base_dir: Path | None, size: int, where: str) -> np.ndarray:
    """The `size` bytes of an external tensor as a fresh uint8 array."""
    info = {entry.key: entry.value for entry in proto.external_data}
    location = info.get("location", "")
    if base_dir is None:
        raise FrontendError(f"{where} keeps its data in an external file ('{location}'), but the model was "
                            "given as an in-memory ModelProto", hint="import the .onnx file by its path")
    target = confined_file(base_dir, location, where, "external data")
    offset = _non_negative(info.get("offset", "0"), "offset", where)
    if "length" in info and _non_negative(info["length"], "length", where) != size:
        raise FrontendError(f"{where}: external data length {info['length']} does not match its "
                            f"dims and type ({size} bytes)")
    available = target.stat().st_size
    if offset + size > available:
        raise FrontendError(f"{where}: external data file '{location}' holds {available} bytes, the tensor "
                            f"needs bytes {offset}..{offset + size}", hint="the data file is truncated or "
                                                                           "belongs to another model")
    with open(target, "rb") as f:
        f.seek(offset)
        data = np.fromfile(f, dtype=np.uint8, count=size)
    if data.size != size:
        raise FrontendError(f"{where}: could only read {data.size} of {size} bytes from '{location}'")
    return data


_DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)


def _non_negative(text: str, key: str, where: str) -> int:
    """Only ASCII digits: int() would also take " 4", "1_0" and other scripts' digits."""
    if not _DIGITS.fullmatch(text):
        raise FrontendError(f"{where}: external data {key} '{text[:40]}' is not a non-negative integer")
    return int(text)

"""Reading external tensor data, confined to the model's own folder.

An initializer may keep its bytes in another file (`location`, `offset`, `length` in
TensorProto.external_data). The location is resolved against the model's folder with symlinks
followed, and must stay inside it: absolute paths, `..` escapes and links pointing elsewhere are
refused, as are missing or special files and ranges past the end of the file. Nothing outside
the folder is ever opened.
"""
from __future__ import annotations

from pathlib import Path, PureWindowsPath

import numpy as np
import onnx

from compiler.errors import FrontendError


def read_external(proto: onnx.TensorProto, base_dir: Path | None, size: int, where: str) -> np.ndarray:
    """The `size` bytes of an external tensor as a fresh uint8 array."""
    info = {entry.key: entry.value for entry in proto.external_data}
    location = info.get("location", "")
    if base_dir is None:
        raise FrontendError(f"{where} keeps its data in an external file ('{location}'), but the model was "
                            "given as an in-memory ModelProto", hint="import the .onnx file by its path")
    target = _confined(base_dir, location, where)
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


def _confined(base_dir: Path, location: str, where: str) -> Path:
    if not location or "\0" in location:
        raise FrontendError(f"{where} has external data without a usable location")
    if Path(location).is_absolute() or PureWindowsPath(location).drive or location.startswith(("\\", "/")):
        raise FrontendError(f"{where}: external data location '{location}' is an absolute path",
                            hint="external data must be a relative path inside the model's folder")
    root = base_dir.resolve()
    try:
        target = (root / location).resolve()
    except (OSError, RuntimeError) as exc:  # symlink loops, over-long names
        raise FrontendError(f"{where}: external data location '{location}' cannot be resolved: {exc}") from None
    if not target.is_relative_to(root):
        raise FrontendError(f"{where}: external data location '{location}' points outside the model's folder "
                            f"({root})", hint="refusing to read it; external data must stay next to the model")
    if not target.is_file():
        raise FrontendError(f"{where}: external data file '{location}' is missing (looked in {root})",
                            hint="copy the data file next to the .onnx file")
    return target


def _non_negative(text: str, key: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise FrontendError(f"{where}: external data {key} '{text}' is not a non-negative integer")
    return value
